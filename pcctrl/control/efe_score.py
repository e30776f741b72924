"""The planner's inner loop: roll candidates out through the dynamics, then score whole trajectories at once.

Rolling out is the only sequential part: a dynamics object with a ``rollout(obs (N, d), actions
(H, N, a), compiled=...)`` method (:class:`pcctrl.models.ensemble_rollout.EnsembleRollout`)
runs the whole horizon itself; any other ``dynamics(obs, action)`` is stepped here. The
preference, termination, epistemic term and discounting are then evaluated over all ``H`` steps
in a few batched calls instead of a dozen per step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .objectives import Preference, step_terminated

Dynamics = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
TerminalValue = Callable[[Tensor], Tensor]


def _step_through(dynamics: Dynamics, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
    """Step ``dynamics`` ``H`` times: states ``(H+1, N, members, d)`` and gains ``(H, N)``."""
    states, gains, state = [], [], obs
    for t in range(actions.shape[0]):
        state, gain = dynamics(state, actions[t])
        states.append(state)
        gains.append(gain)
    first = obs.unsqueeze(1).expand_as(states[0]) if obs.ndim == 2 else obs
    return torch.stack([first, *states]), torch.stack(gains)


_compiled_step_through: Callable[[Dynamics, Tensor, Tensor], tuple[Tensor, Tensor]] | None = None


def rollout(dynamics: Dynamics, obs: Tensor, actions: Tensor, *,
            compiled: bool = False) -> tuple[Tensor, Tensor | None]:
    """Every member's trajectory from ``obs (N, d)`` under ``actions (H, N, a)``.

    Returns the states ``(H+1, N, members, d)`` (``states[0]`` is ``obs``) and the information
    gain per step ``(H, N)`` (``None``: the dynamics did not compute it, i.e. it is zero).
    """
    own = getattr(dynamics, "rollout", None)
    if own is not None:
        return own(obs, actions, compiled=compiled)
    if not compiled:
        return _step_through(dynamics, obs, actions)
    global _compiled_step_through
    if _compiled_step_through is None:
        _compiled_step_through = torch.compile(_step_through, dynamic=False)
    return _compiled_step_through(dynamics, obs, actions)


def score(preference: Preference, states: Tensor, actions: Tensor, gains: Tensor | None, *,
          epistemic_weight: float, discount: float, terminal_value: TerminalValue | None,
          risk_aversion: float = 0.0) -> Tensor:
    """``-G`` of each candidate ``(N,)`` from its rollout: ``states (H+1, N, k, d)``, ``actions (H, N, a)``.

    Per member ``k``: ``sum_t discount^t alive_t [log p~(o_t, a_t, o_{t+1}) + w IG_t]`` plus
    ``discount^H alive_H V(o_H)``, averaged over members (NaN counts as ``-inf``), less
    ``risk_aversion`` times the members' standard deviation of it (with two or more members).
    The sum runs step by step in float32, in the order of a step-by-step planner.
    """
    h, members = actions.shape[0], states.shape[2]
    acts = actions.unsqueeze(2).expand(-1, -1, members, -1)
    values = preference.log_preference(states[:-1], acts, states[1:])
    if epistemic_weight and gains is not None:
        values = values + epistemic_weight * gains.unsqueeze(-1)
    done = step_terminated(preference, states[:-1], states[1:])
    alive = None
    if done is not None:
        alive = (~done).to(values.dtype).cumprod(0)  # alive[t]: no termination up to and including step t
        values = torch.cat((values[:1], values[1:] * alive[:-1]), 0)
    values = values.contiguous()
    total, weight = values[0] * 1.0, 1.0
    for t in range(1, h):
        weight *= discount
        total = total + weight * values[t]
    weight *= discount
    if terminal_value is not None:
        end = states[-1].contiguous()
        tail = terminal_value(end).reshape(end.shape[:2])
        total = total + weight * (tail if alive is None else tail * alive[-1])
    value = total.mean(1)
    if risk_aversion and members > 1:
        value = value - risk_aversion * total.std(1)
    return torch.nan_to_num(value, nan=-torch.inf)
