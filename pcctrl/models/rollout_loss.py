"""k-step rollout loss of a ``DynamicsEnsemble``, expressed as one PC graph over the unrolled model.

The model predicts the normalised state change ``o_t = f(norm(s_t, a_t))``; unrolled open loop
from a true start ``s_0`` it gives ``s^_{t+1} = s^_t + std * o_t + mean`` (``std``, ``mean``: the
target normaliser). The k-step loss sums the one-step Gaussian NLL of every rollout state,

    L = sum_{t=1..k} 1/2 |(s_t - s^_t) / std|^2_Pi - 1/2 log det Pi,

which for ``k = 1`` is the ensemble's one-step loss. As a PC graph (:class:`pcctrl.core.EnergyGraph`)
each step ``t`` holds the layer nodes ``x{t}_0 .. x{t}_L`` of the member networks (the *same*
modules at every step, so shared weights collect their local updates over all uses), a rollout
node ``r{t+1} = (s^_{t+1} - s_0) / std`` and an observation node ``z{t+1}`` clamped at the true
``(s_{t+1} - s_0) / std`` that carries the ensemble's learnable precision (one precision module
shared by the k observation nodes). Under ``"exact"`` (Z-IL) the local updates equal backprop of
``L``; ``"fpa"``, ``"il"`` and ``"ipc"`` relax the same graph. With a heteroscedastic ensemble the
observation node also carries the step's log-precision head and is clamped at
``z - dL_t/dz`` (its feed-forward value minus the NLL's gradient), as the one-step fit does.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor, nn

from ..core import EnergyGraph, NodeSpec
from ..core.inference import Settings
from ..core.learning import learnable_parameters, pc_gradients, train_step
from ..core.network import _DEFAULTS
from ..errors import InvalidArgumentError, ShapeError


def check_rollout_steps(rollout_steps: object) -> int:
    """``rollout_steps`` as an int >= 1, or :class:`InvalidArgumentError`."""
    if isinstance(rollout_steps, bool) or not isinstance(rollout_steps, Integral) or rollout_steps < 1:
        raise InvalidArgumentError("rollout_steps", f"must be an integer >= 1, got {rollout_steps!r}")
    return int(rollout_steps)


def sequence_starts(obs: Tensor, next_obs: Tensor, k: int, episode_ends: Tensor | None = None) -> Tensor:
    """Indices ``i`` whose transitions ``i, ..., i+k-1`` follow each other within one episode.

    Transition ``i`` continues into ``i+1`` when ``next_obs[i] == obs[i+1]`` exactly (a reset, a
    gap left by a held-out transition, or the oldest-first wrap of a ring buffer all break it) and
    ``episode_ends[i]`` (if given: terminated or truncated) is false. Raises
    :class:`ShapeError` when there are fewer than ``k`` transitions or no such run of ``k``.
    """
    n = obs.shape[0]
    if n < k:
        raise ShapeError("obs", f"a {k}-step rollout loss needs at least {k} transitions, got {n}")
    links = (next_obs[:-1] == obs[1:]).all(-1)
    if episode_ends is not None:
        if episode_ends.shape != (n,):
            raise ShapeError("episode_ends", f"must have shape ({n},), got {tuple(episode_ends.shape)}")
        links = links & ~episode_ends[:-1].to(device=links.device, dtype=torch.bool)
    # run[i]: transitions i .. i+k-1 are linked, i.e. links[i .. i+k-2] all hold.
    run = torch.ones(n - k + 1, dtype=torch.bool, device=obs.device)
    for j in range(k - 1):
        run &= links[j:j + n - k + 1]
    starts = run.nonzero().flatten()
    if starts.numel() == 0:
        raise ShapeError("obs", f"no run of {k} consecutive transitions within one episode among {n} "
                                "(episodes are shorter than rollout_steps)")
    return starts


class RolloutLoss:
    """The k-step loss of ``ensemble`` as a PC graph (see the module docstring) and by autograd.

    Batches are ``s0 (B, members, d)`` raw start states, ``s_next (B, members, k, d)`` the true
    next states and ``actions (B, members, k, a)``; the ensemble's normalisers are read at call
    time. A plain object (not a module), so the ensemble's ``state_dict`` does not change.
    """

    def __init__(self, ensemble: nn.Module, k: int) -> None:
        self.ensemble, self.k = ensemble, check_rollout_steps(k)
        self.layers = list(ensemble.net.module)
        self.graph = EnergyGraph(self._specs(), ensemble.net.module, self._precisions())
        net = ensemble.net
        steps, x_lr = _DEFAULTS.get(net.algorithm, (None, 1.0))
        depth = self.graph.depth
        self.settings = Settings(net.algorithm, net.T if net.T is not None else max(steps or 0, depth),
                                 net.x_lr if net.x_lr is not None else x_lr, net.tol, net.node_optimizer, net.guard)

    # ---- the graph ------------------------------------------------------------------------------

    def _specs(self) -> list[NodeSpec]:
        ens, last = self.ensemble, len(self.layers)
        specs = [NodeSpec("s0", about="start state (raw)"), NodeSpec("r0", about="rollout offset 0")]
        for t in range(self.k):
            specs.append(NodeSpec(f"a{t}", about=f"action {t}"))
            if t == 0:
                specs.append(NodeSpec("x0_0", about="normalised input of step 0"))
            else:
                specs.append(NodeSpec(f"x{t}_0", ("s0", f"r{t}", f"a{t}"), self._step_input,
                                      about=f"normalised input of step {t}"))
            for i, layer in enumerate(self.layers):
                specs.append(NodeSpec(f"x{t}_{i + 1}", (f"x{t}_{i}",), layer,
                                      about=f"step {t}, layer {i}: {type(layer).__name__}"))
            specs.append(NodeSpec(f"r{t + 1}", (f"r{t}", f"x{t}_{last}"), self._advance,
                                  about=f"rollout offset {t + 1} (normalised)"))
            if ens.heteroscedastic:
                specs.append(NodeSpec(f"z{t + 1}", (f"r{t + 1}", f"x{t}_{last}"), self._observe_with_precision,
                                      about=f"observation {t + 1} with log precision"))
            else:
                specs.append(NodeSpec(f"z{t + 1}", (f"r{t + 1}",), _identity, about=f"observation {t + 1}"))
        return specs

    def _precisions(self) -> dict[str, nn.Module]:
        if self.ensemble.precision is None:
            return {}
        return {f"z{t + 1}": self.ensemble.precision for t in range(self.k)}

    def _step_input(self, s0: Tensor, r: Tensor, a: Tensor) -> Tensor:
        ens = self.ensemble
        return ens.input_norm(torch.cat((s0 + r * ens.target_norm.std, a), -1))

    def _advance(self, r: Tensor, out: Tensor) -> Tensor:
        norm = self.ensemble.target_norm
        return r + out[..., :self.ensemble.obs_dim] + norm.mean / norm.std

    def _observe_with_precision(self, r: Tensor, out: Tensor) -> Tensor:
        return torch.cat((r, out[..., self.ensemble.obs_dim:]), -1)

    # ---- the loss by autograd -------------------------------------------------------------------

    def _targets(self, s0: Tensor, s_next: Tensor) -> Tensor:
        """True offsets ``(s_t - s_0) / std``, ``(B, members, k, d)``."""
        return (s_next - s0.unsqueeze(2)) / self.ensemble.target_norm.std

    def _rollout(self, s0: Tensor, actions: Tensor) -> list[tuple[Tensor, Tensor]]:
        """``(r_{t+1}, out_t)`` for each step, by the same node functions as the graph."""
        ens = self.ensemble
        r = torch.zeros_like(s0)
        steps = []
        for t in range(self.k):
            x = ens.input_norm(torch.cat((s0, actions[:, :, 0]), -1)) if t == 0 else \
                self._step_input(s0, r, actions[:, :, t])
            out = ens.net.module(x)
            r = self._advance(r, out)
            steps.append((r, out))
        return steps

    def _step_nll(self, y: Tensor, r: Tensor, out: Tensor) -> Tensor:
        """Per-sample NLL of one step, summed over members and entries: ``(B,)``."""
        _, log_pi = self.ensemble._heads(out)
        return (0.5 * (y - r).square() * log_pi.exp() - 0.5 * log_pi).sum((1, 2))

    def nll(self, s0: Tensor, s_next: Tensor, actions: Tensor) -> Tensor:
        """The k-step loss ``L`` (batch mean, summed over steps, members and entries), by autograd."""
        y = self._targets(s0, s_next)
        total = sum(self._step_nll(y[:, :, t], r, out) for t, (r, out) in enumerate(self._rollout(s0, actions)))
        return total.mean()  # type: ignore[union-attr]

    # ---- the loss by the PC core ----------------------------------------------------------------

    def _clamps(self, s0: Tensor, s_next: Tensor, actions: Tensor) -> dict[str, Tensor]:
        ens = self.ensemble
        y = self._targets(s0, s_next)
        clamps = {"s0": s0, "r0": torch.zeros_like(s0), "x0_0": ens.input_norm(torch.cat((s0, actions[:, :, 0]), -1))}
        for t in range(self.k):
            clamps[f"a{t}"] = actions[:, :, t]
        if not ens.heteroscedastic:
            clamps.update({f"z{t + 1}": y[:, :, t] for t in range(self.k)})
            return clamps
        with torch.no_grad():
            steps = self._rollout(s0, actions)
        d = ens.obs_dim
        for t, (r, out) in enumerate(steps):
            with torch.enable_grad():
                z = self._observe_with_precision(r, out).detach().requires_grad_(True)
                log_pi = ens._log_precision(z[..., d:])
                nll = (0.5 * (y[:, :, t] - z[..., :d]).square() * log_pi.exp() - 0.5 * log_pi).sum()
                (grad,) = torch.autograd.grad(nll, z)
            clamps[f"z{t + 1}"] = (z - grad).detach()
        return clamps

    def train_step(self, s0: Tensor, s_next: Tensor, actions: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """One PC learning step of the unrolled graph (writes ``.grad``, steps ``optimizer``)."""
        graph = self.graph
        train_step(graph, graph.prepare(self._clamps(s0, s_next, actions)), self.settings, optimizer,
                   self.ensemble.net)

    def pc_gradients(self, s0: Tensor, s_next: Tensor, actions: Tensor) -> dict[int, Tensor]:
        """The PC update of each learnable parameter (by ``id``), as a gradient; nothing is changed."""
        graph = self.graph
        grads, _ = pc_gradients(graph, graph.prepare(self._clamps(s0, s_next, actions)), self.settings)
        params = learnable_parameters(graph)
        return {id(p): torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)}

    def batch(self, obs: Tensor, actions: Tensor, next_obs: Tensor, starts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(s0, s_next, actions)`` of the sequences starting at ``starts (B, members)``."""
        idx = starts.unsqueeze(-1) + torch.arange(self.k, device=starts.device)
        return obs[starts], next_obs[idx], actions[idx]


def _identity(x: Tensor) -> Tensor:
    return x
