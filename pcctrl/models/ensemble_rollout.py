"""``EnsembleRollout``: a fitted :class:`DynamicsEnsemble` as fast planner dynamics, one step or a whole horizon."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..errors import ShapeError


def _advance(x: Tensor, weights: list[Tensor], biases: list[Tensor]) -> Tensor:
    """Every member's network on member-major inputs ``x (members, N, in)``: one ``baddbmm`` per layer."""
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        x = torch.baddbmm(b, x, w)
        if i < last:
            x = torch.nn.functional.silu(x)
    return x


def soft_log_precision(raw: Tensor, hi: float) -> Tensor:
    """Soft bound of a heteroscedastic log-precision head to ``[-hi, hi]``."""
    return -hi + nn.functional.softplus(hi - nn.functional.softplus(hi - raw) + hi)


def _gain(nxt: Tensor, head: Tensor, var: Tensor | None, hi: float, var_scale: Tensor, dim: int) -> Tensor:
    """``1/2 sum_d log(1 + Var_k[mean] / E_k[var])`` with members along ``dim`` of ``nxt`` and ``head``."""
    aleatoric = var if var is not None else ((-soft_log_precision(head, hi)).exp() * var_scale).mean(dim)
    return 0.5 * torch.log1p(nxt.var(dim, unbiased=False) / aleatoric).sum(-1)


def _horizon(x: Tensor, weights: list[Tensor], biases: list[Tensor], var: Tensor | None, hi: float,
             var_scale: Tensor, with_gain: bool) -> Tensor | None:
    """Roll every member out over the horizon, writing each step's states into ``x (H+1, members, N, d+a)``.

    ``x[t, ..., d:]`` holds the actions of step ``t`` and ``x[0, ..., :d]`` the start; returns
    the per-step information gains ``(H, N)`` (``None`` without ``with_gain``), computed for all
    steps at once after the rollout.
    """
    d, h = var_scale.shape[0], x.shape[0] - 1
    heads = x.new_empty(h, *x.shape[1:3], d) if with_gain and var is None else None
    for t in range(h):
        out = _advance(x[t], weights, biases)
        torch.add(x[t, :, :, :d], out[..., :d], out=x[t + 1, :, :, :d])
        if heads is not None:
            heads[t] = out[..., d:]
    if not with_gain:
        return None
    return _gain(x[1:, :, :, :d], heads, var, hi, var_scale, 1)


def _horizon_pure(start: Tensor, actions: Tensor, weights: list[Tensor], biases: list[Tensor],
                  var: Tensor | None, hi: float, var_scale: Tensor,
                  with_gain: bool) -> tuple[Tensor, Tensor | None]:
    """:func:`_horizon` without writes into its inputs (what ``torch.compile`` gets).

    ``start (members, N, d)``, ``actions (H, members, N, a)``; returns the states
    ``(H+1, N, members, d)`` and the gains ``(H, N)`` or ``None``.
    """
    d = var_scale.shape[0]
    states, gains, state = [start], [], start
    for t in range(actions.shape[0]):
        out = _advance(torch.cat((state, actions[t]), -1), weights, biases)
        state = state + out[..., :d]
        states.append(state)
        if with_gain:
            gains.append(_gain(state, out[..., d:], var, hi, var_scale, 0))
    return torch.stack(states).permute(0, 2, 1, 3).contiguous(), torch.stack(gains) if with_gain else None


_compiled: Callable[..., tuple[Tensor, Tensor | None]] | None = None


def compiled_horizon() -> Callable[..., tuple[Tensor, Tensor | None]]:
    """:func:`_horizon_pure` under ``torch.compile`` (static shapes, one graph per shape; compiled on first use).

    Weights are arguments, not constants, so a refit's new weights reuse the compiled graph.
    """
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(_horizon_pure, dynamic=False, fullgraph=True)
    return _compiled


class EnsembleRollout:
    """A fitted ensemble folded into plain tensors: normalisers inside the first and last layers.

    Calling it is one planning step, ``(obs (N, d) or (N, members, d), actions (N, a))`` ->
    ``(next (N, members, d), gain (N,))``. :meth:`rollout` runs a whole horizon at once in a
    member-major work buffer that is reused between calls of the same shape (no concatenation
    or transposes per step), optionally compiled. Valid until the ensemble's next fit.
    """

    def __init__(self, weights: list[Tensor], biases: list[Tensor], var: Tensor | None, var_scale: Tensor, *,
                 max_log_precision: float, with_gain: bool) -> None:
        self.weights, self.biases = weights, [b.unsqueeze(1) for b in biases]
        self.var, self.hi, self.var_scale = var, float(max_log_precision), var_scale
        self.members, self.obs_dim = weights[0].shape[0], var_scale.shape[0]
        self.action_dim = weights[0].shape[1] - self.obs_dim
        self.with_gain = bool(with_gain) and self.members > 1
        self._buffer: Tensor | None = None

    def __call__(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        n, k, d = obs.shape[0], self.members, self.obs_dim
        if obs.ndim == 2:
            obs = obs.unsqueeze(1).expand(-1, k, -1)
        h = torch.cat((obs, actions.unsqueeze(1).expand(-1, k, -1)), -1).transpose(0, 1)
        h = _advance(h, self.weights, self.biases).transpose(0, 1)
        nxt = obs + h[..., :d]
        if not self.with_gain:
            return nxt, torch.zeros(n, dtype=nxt.dtype, device=nxt.device)
        return nxt, _gain(nxt, h[..., d:], self.var, self.hi, self.var_scale, 1)

    def rollout(self, obs: Tensor, actions: Tensor, *, compiled: bool = False) -> tuple[Tensor, Tensor | None]:
        """Every member's trajectory from ``obs (N, d)`` (or one start per member, ``(N, members, d)``)
        under ``actions (H, N, a)``.

        Returns the states ``(H+1, N, members, d)`` (contiguous) and the information gain per
        step ``(H, N)``, or ``None`` when this rollout does not compute it. ``compiled=True`` runs
        the horizon as one ``torch.compile`` graph (compiled once per shape; new weights after a refit do not recompile).
        """
        h, n = actions.shape[0], actions.shape[1]
        k, d, a = self.members, self.obs_dim, self.action_dim
        if obs.shape not in ((n, d), (n, k, d)) or actions.shape[2] != a:
            raise ShapeError("obs", f"rollout needs obs (N, {d}) or (N, {k}, {d}) and actions (H, N, {a}), got "
                                    f"{tuple(obs.shape)} and {tuple(actions.shape)}")
        per_member = obs.ndim == 3
        if compiled:
            start = obs.transpose(0, 1) if per_member else obs.unsqueeze(0).expand(k, -1, -1)
            acts = actions.unsqueeze(1).expand(-1, k, -1, -1)
            states, gains = compiled_horizon()(start, acts, self.weights, self.biases, self.var, self.hi,
                                               self.var_scale, self.with_gain)
            return states, gains
        shape = (h + 1, k, n, d + a)
        # Under CUDA-graph capture the buffer belongs to the graph: keeping it here would hand the
        # graph's memory to later eager calls.
        capturing = obs.is_cuda and torch.cuda.is_current_stream_capturing()
        buf = None if capturing else self._buffer
        if buf is None or buf.shape != shape or buf.dtype != obs.dtype or buf.device != obs.device:
            buf = obs.new_zeros(shape)
            if not capturing:
                self._buffer = buf
        buf[:h, :, :, d:] = actions.unsqueeze(1)
        buf[0, :, :, :d] = obs.transpose(0, 1) if per_member else obs
        gains = _horizon(buf, self.weights, self.biases, self.var, self.hi, self.var_scale, self.with_gain)
        # One contiguous copy in the planner's layout: the preference then reads plain memory.
        return buf[..., :d].permute(0, 2, 1, 3).contiguous(), gains
