"""``EFEPlanner``: expected-free-energy planning by CEM or MPPI over a batched dynamics model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from ..errors import InvalidArgumentError, ShapeError
from .colored_noise import colored_normal
from .efe_score import Dynamics, TerminalValue, rollout, score
from .graphed_call import GraphedCall
from .objectives import Preference
Method = Literal["cem", "mppi"]


def known_dynamics(step: Callable[[Tensor, Tensor], Tensor]) -> Dynamics:
    """Wrap a deterministic ``step(obs (B, d), action (B, a)) -> next (B, d)`` as planner dynamics.

    The result behaves like a one-member ensemble that is certain: information gain 0.
    """

    def dynamics(obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        flat = obs if obs.ndim == 2 else obs[:, 0]
        nxt = step(flat, action if action.ndim == 2 else action[:, 0])
        return nxt.unsqueeze(1), torch.zeros(flat.shape[0], dtype=nxt.dtype, device=nxt.device)

    return dynamics


def _check_settings(*, method: str, horizon: int, candidates: int, iterations: int, elites: int, momentum: float,
                    temperature: float, init_std: float, discount: float, noise_beta: float, risk_aversion: float,
                    epistemic_weight: float, cuda_graph: bool, compile: bool, device: torch.device | str) -> None:
    """Raise :class:`InvalidArgumentError` for the first of :class:`EFEPlanner`'s settings that is out of range."""
    if method not in ("cem", "mppi"):
        raise InvalidArgumentError("method", f"must be 'cem' or 'mppi', got {method!r}")
    for name, value in (("horizon", horizon), ("candidates", candidates), ("iterations", iterations),
                        ("elites", elites)):
        if int(value) < 1:
            raise InvalidArgumentError(name, f"must be at least 1, got {value}")
    if elites > candidates:
        raise InvalidArgumentError("elites", f"({elites}) cannot exceed candidates ({candidates})")
    if not 0 <= momentum < 1 or not temperature > 0 or not init_std > 0 or not 0 < discount <= 1:
        raise InvalidArgumentError("momentum", "need 0 <= momentum < 1, temperature > 0, init_std > 0, "
                                               "0 < discount <= 1")
    if not noise_beta >= 0:
        raise InvalidArgumentError("noise_beta", f"must be >= 0, got {noise_beta}")
    if not risk_aversion >= 0:
        raise InvalidArgumentError("risk_aversion", f"must be >= 0, got {risk_aversion}")
    if epistemic_weight < 0:
        raise InvalidArgumentError("epistemic_weight", f"must be non-negative, got {epistemic_weight}")
    if cuda_graph and compile:
        raise InvalidArgumentError("cuda_graph", "replays the whole search as one graph; drop compile=True")
    if cuda_graph and torch.device(device).type != "cuda":
        raise InvalidArgumentError("cuda_graph", f"needs a CUDA device, got device={device!r}")


class EFEPlanner:
    """Chooses actions by minimising expected free energy over a receding horizon.

    For an action sequence ``a_{0:H}``, with each model member ``k`` rolling out its own mean
    trajectory ``o^k_{1:H}``::

        -G(a) = mean_k sum_t discount^t alive^k_t [ log p~(o^k_t, a_t, o^k_{t+1})   (extrinsic)
                                                  + epistemic_weight * IG_t ]     (epistemic)

    ``IG_t`` is the information gain about the model that the dynamics report (ensemble
    disagreement); ``epistemic_weight=0`` turns it off. An optional ``terminal_value(o (N, members,
    d)) -> (N, members)`` adds ``discount^H alive^k_H V(o^k_H)``, the value beyond the horizon in
    the same units as ``log p~`` (``None``, the default: nothing is added). ``alive`` drops everything after a
    predicted termination. The search is CEM (refit a Gaussian to the ``elites`` best
    candidates) or MPPI (exponentially weighted average with ``temperature``) over ``iterations``;
    between calls the mean sequence is shifted by one step (warm start). Every candidate × member
    × environment is one batched call of ``dynamics(obs, action)``, which takes ``obs`` as
    ``(N, d)`` or ``(N, members, d)`` and returns ``(next (N, members, d), gain (N,))``; a
    dynamics with a ``rollout`` method (``DynamicsEnsemble.planning_dynamics()``) rolls the whole
    horizon out itself. The preference is then scored over all steps at once, on tensors with
    leading dimensions ``(H, N, members)`` (:mod:`pcctrl.control.efe_score`). ``compile=True``
    runs the rollout under ``torch.compile`` (static shapes: compiled once per batch size, on the
    first call; same numbers as eager up to float rounding). ``noise_beta`` colours the candidates'
    noise along the horizon (power ``1/f^beta``, :func:`~pcctrl.control.colored_noise.colored_normal`;
    0, the default, is white noise): correlated samples hold a push for longer, so the search finds
    plans that first swing away from the goal (iCEM's sampler). ``risk_aversion = kappa > 0`` scores
    a candidate by the members' mean value less ``kappa`` times their standard deviation (a lower
    confidence bound): plans whose outcome the ensemble disagrees on, which a search can exploit
    in a learned model, lose to plans it agrees on. ``cuda_graph=True`` (CUDA only) replays each
    search, all iterations, as one captured CUDA graph (:class:`~pcctrl.control.graphed_call.GraphedCall`):
    the same numbers as eager, without a kernel launch per operation. It is captured again on the
    first plan after a ``set_*`` call or a change of shape or setting; the noise is drawn outside it.
    """

    def __init__(self, dynamics: Dynamics, preference: Preference, action_low: Tensor, action_high: Tensor, *,
                 horizon: int = 20, method: Method = "cem", candidates: int = 200, iterations: int = 3,
                 elites: int = 20, momentum: float = 0.1, temperature: float = 1.0, init_std: float = 0.5,
                 epistemic_weight: float = 0.0, discount: float = 1.0, seed: int = 0,
                 device: torch.device | str = "cpu", terminal_value: TerminalValue | None = None,
                 compile: bool = False, noise_beta: float = 0.0, risk_aversion: float = 0.0,
                 cuda_graph: bool = False) -> None:
        _check_settings(method=method, horizon=horizon, candidates=candidates, iterations=iterations, elites=elites,
                        momentum=momentum, temperature=temperature, init_std=init_std, discount=discount,
                        noise_beta=noise_beta, risk_aversion=risk_aversion, epistemic_weight=epistemic_weight,
                        cuda_graph=cuda_graph, compile=compile, device=device)
        low = torch.as_tensor(action_low, dtype=torch.float32, device=device).reshape(-1)
        high = torch.as_tensor(action_high, dtype=torch.float32, device=device).reshape(-1)
        if low.shape != high.shape or not bool(torch.isfinite(low).all() and torch.isfinite(high).all()) \
                or not bool((high > low).all()):
            raise InvalidArgumentError("action_low", "action bounds must be finite, of equal shape, with high > low")
        self.dynamics, self.preference = dynamics, preference
        self.terminal_value: TerminalValue | None = None
        self._revision = 0
        self.set_terminal_value(terminal_value)
        self.low, self.high = low, high
        self.horizon, self.method, self.candidates = int(horizon), method, int(candidates)
        self.iterations, self.elites, self.momentum = int(iterations), int(elites), float(momentum)
        self.temperature, self.init_std = float(temperature), float(init_std)
        self.epistemic_weight, self.discount = float(epistemic_weight), float(discount)
        self.device = torch.device(device)
        self.compile, self.noise_beta, self.risk_aversion = bool(compile), float(noise_beta), float(risk_aversion)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._mid, self._half = (low + high) / 2, (high - low) / 2
        self.mean: Tensor | None = None  # warm start, (E, H, a) in [-1, 1] units
        self.std: Tensor | None = None
        self.last_plan: Tensor | None = None  # the searched action sequences of the last plan, (E, H, a)
        self._graphed = GraphedCall(self._iterate) if cuda_graph else None

    @property
    def action_dim(self) -> int:
        """Size of one action."""
        return self.low.numel()

    def set_dynamics(self, dynamics: Dynamics) -> None:
        """Plan with ``dynamics`` from now on (e.g. after a model refit); the warm start is kept."""
        if not callable(dynamics):
            raise InvalidArgumentError("dynamics", f"must be callable, got {type(dynamics).__name__}")
        self.dynamics = dynamics
        self._revision += 1  # a set_* call: capture again

    def set_epistemic_weight(self, weight: float) -> None:
        """Scale the information gain by ``weight`` from now on (e.g. a schedule that decays it)."""
        if not weight >= 0:
            raise InvalidArgumentError("epistemic_weight", f"must be non-negative, got {weight}")
        self.epistemic_weight = float(weight)
        self._revision += 1  # a set_* call: capture again

    def set_terminal_value(self, terminal_value: TerminalValue | None) -> None:
        """Add ``terminal_value`` beyond the horizon from now on (``None``: stop adding one)."""
        if terminal_value is not None and not callable(terminal_value):
            raise InvalidArgumentError("terminal_value",
                                       f"must be callable or None, got {type(terminal_value).__name__}")
        self.terminal_value = terminal_value
        self._revision += 1  # a set_* call: capture again

    def reset(self, rows: Tensor | None = None) -> None:
        """Forget the warm start (of all environments, or of the boolean ``rows``)."""
        if rows is None or self.mean is None:
            self.mean, self.std = None, None
        else:
            self.mean[rows] = 0.0
            self.std[rows] = self.init_std  # type: ignore[index]

    def evaluate(self, obs: Tensor, actions: Tensor) -> Tensor:
        """``-G`` of each action sequence: ``obs (E, d)``, ``actions (E, C, H, a)`` -> ``(E, C)``."""
        e, c, h, _ = actions.shape
        state = obs.to(self.device, torch.float32).repeat_interleave(c, 0)
        return self._values(state, actions.reshape(e * c, h, -1)).reshape(e, c)

    def _values(self, state: Tensor, flat: Tensor) -> Tensor:
        """``-G`` of ``flat (N, H, a)`` from ``state (N, d)``: one rollout, then one batched scoring."""
        actions = flat.transpose(0, 1)
        states, gains = rollout(self.dynamics, state, actions, compiled=self.compile)
        return score(self.preference, states, actions, gains, epistemic_weight=self.epistemic_weight,
                     discount=self.discount, terminal_value=self.terminal_value,
                     risk_aversion=self.risk_aversion)

    @torch.no_grad()
    def plan(self, obs: Tensor, rows: Tensor | None = None) -> Tensor:
        """The next action for each environment: ``obs (E, d)`` -> ``(E, a)`` within the bounds.

        ``obs (E, members, d)`` starts each ensemble member from its own state (e.g. draws from a
        belief, so the plans' cost is the expected cost under the belief, not the cost at its mean);
        the dynamics must then take ``(N, members, d)`` states. With a boolean ``rows (E,)`` only
        the selected environments are planned (their warm start advances, the others' is kept)
        and ``(rows.sum(), a)`` actions are returned.
        """
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if obs.ndim not in (2, 3):
            raise ShapeError("obs", f"must be (n_envs, obs_dim) or (n_envs, members, obs_dim), got shape "
                                    f"{tuple(obs.shape)}")
        if not bool(torch.isfinite(obs).all()):
            raise InvalidArgumentError("obs", "must be finite")
        e, h, a = obs.shape[0], self.horizon, self.action_dim
        if self.mean is None or self.mean.shape[0] != e:
            self.mean = torch.zeros(e, h, a, device=self.device)
            self.std = torch.full((e, h, a), self.init_std, device=self.device)
        if rows is None:
            action, self.mean, self.std = self._search(obs, self.mean)
            return action
        rows = torch.as_tensor(rows, dtype=torch.bool, device=self.device).reshape(-1)
        if rows.shape[0] != e:
            raise ShapeError("rows", f"has {rows.shape[0]} entries for {e} environments")
        action, mean, std = self._search(obs[rows], self.mean[rows])
        self.mean[rows], self.std[rows] = mean, std  # type: ignore[index]
        return action

    def _search(self, obs: Tensor, warm: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """CEM/MPPI from the warm start ``warm (E, H, a)``: first actions, shifted mean, final std."""
        e, h, a, c = obs.shape[0], self.horizon, self.action_dim, self.candidates
        # All iterations' noise first, in the order the iterations use it: the search itself draws
        # nothing, so it can be replayed as a CUDA graph with the same numbers.
        noise = torch.stack([colored_normal((e, c, h, a), self.noise_beta, self.generator, dim=2, device=self.device)
                             for _ in range(self.iterations)])
        noise[:, :, 0] = 0.0  # the current mean is always a candidate
        if self._graphed is None:
            action, mean, std, self.last_plan = self._iterate(obs, warm, noise)
        else:
            action, mean, std, self.last_plan = self._graphed(obs, warm, noise, settings=self._captured_settings())
        return action, mean, std

    def _captured_settings(self) -> tuple[object, ...]:
        """What a captured search depends on besides its tensor inputs (objects compare by identity)."""
        return (self._revision, self.dynamics, self.preference, self.terminal_value, self.method, self.elites,
                self.momentum, self.temperature, self.init_std, self.epistemic_weight, self.discount,
                self.risk_aversion, self.iterations, self.horizon, self.candidates)

    def _iterate(self, obs: Tensor, warm: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The search's iterations on given ``noise (iterations, E, C, H, a)``; also returns the plan."""
        e, h, a, c = obs.shape[0], self.horizon, self.action_dim, self.candidates
        mean, std = warm, torch.full_like(warm, self.init_std)
        state = obs.unsqueeze(1).expand(e, c, *obs.shape[1:]).reshape(e * c, *obs.shape[1:])
        for i in range(self.iterations):
            cand = (mean.unsqueeze(1) + std.unsqueeze(1) * noise[i]).clamp(-1.0, 1.0)
            values = self._values(state, (self._mid + self._half * cand).reshape(e * c, h, a)).reshape(e, c)
            if self.method == "cem":
                top = values.topk(self.elites, dim=1).indices
                elite = cand.gather(1, top[:, :, None, None].expand(-1, -1, h, a))
                new_mean, new_std = elite.mean(1), elite.std(1, unbiased=False)
                mean = self.momentum * mean + (1 - self.momentum) * new_mean
                std = self.momentum * std + (1 - self.momentum) * new_std
            else:
                w = torch.softmax((values - values.max(1, keepdim=True).values) / self.temperature, dim=1)
                mean = (w[:, :, None, None] * cand).sum(1)
        action = self._mid + self._half * mean[:, 0]
        plan = self._mid + self._half * mean
        return action, torch.cat((mean[:, 1:], torch.zeros_like(mean[:, :1])), 1), std, plan

    def sample_first(self, action: Tensor, rows: Tensor | None = None) -> Tensor:
        """A stochastic first action around ``action`` with the search's last spread (in bounds).

        ``rows`` is the mask given to :meth:`plan` when only some environments were planned.
        """
        std = self.init_std if self.std is None else self.std[:, 0]
        if rows is not None and self.std is not None:
            std = std[torch.as_tensor(rows, dtype=torch.bool, device=self.device).reshape(-1)]
        noise = torch.randn(action.shape, generator=self.generator, device=self.device)
        return torch.maximum(torch.minimum(action + self._half * std * noise, self.high), self.low)

    def state_dict(self) -> dict[str, object]:
        """Warm start and random-generator state (for identical actions after save/load)."""
        return {"mean": self.mean, "std": self.std, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore :meth:`state_dict`."""
        self.mean = None if state["mean"] is None else state["mean"].to(self.device)  # type: ignore[union-attr]
        self.std = None if state["std"] is None else state["std"].to(self.device)  # type: ignore[union-attr]
        self.generator.set_state(state["generator"])  # type: ignore[arg-type]
