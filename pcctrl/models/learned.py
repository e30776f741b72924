"""Neural state-space models whose ``f`` and ``g`` are learned from trajectories by the PC core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..core import PCNetwork
from ..errors import InvalidArgumentError
from .mlp import tanh_mlp
from .state_space import StateSpaceModel


def _features(s: Tensor, angle_dims: tuple[int, ...]) -> Tensor:
    """The state with each angle entry replaced by its cosine and sine (periodic inputs)."""
    if not angle_dims:
        return s
    parts = []
    for i in range(s.shape[-1]):
        column = s[..., i:i + 1]
        parts.extend((torch.cos(column), torch.sin(column)) if i in angle_dims else (column,))
    return torch.cat(parts, dim=-1)


class _Normalised(nn.Module):
    """A PC network between standardised inputs and standardised outputs."""

    def __init__(self, net: PCNetwork, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("in_mean", torch.zeros(in_dim))
        self.register_buffer("in_std", torch.ones(in_dim))
        self.register_buffer("out_mean", torch.zeros(out_dim))
        self.register_buffer("out_std", torch.ones(out_dim))

    def fit_statistics(self, inputs: Tensor, targets: Tensor) -> None:
        """Standardise with the data's mean and standard deviation (floored to avoid a 0 scale)."""
        self.in_mean.copy_(inputs.mean(0))
        self.in_std.copy_(inputs.std(0).clamp_min(1e-6))
        self.out_mean.copy_(targets.mean(0))
        self.out_std.copy_(targets.std(0).clamp_min(1e-6))

    def scaled_in(self, x: Tensor) -> Tensor:
        return (x - self.in_mean) / self.in_std

    def scaled_out(self, y: Tensor) -> Tensor:
        return (y - self.out_mean) / self.out_std

    def unscale_out(self, z: Tensor) -> Tensor:
        return z * self.out_std + self.out_mean


class MLPTransition(_Normalised):
    """``f(s, a) = s + net([phi(s), a])`` (a residual step), ``phi`` encoding angles as cos/sin."""

    def __init__(self, net: PCNetwork, state_dim: int, action_dim: int, angle_dims: Sequence[int] = ()) -> None:
        self.angle_dims = tuple(angle_dims)
        super().__init__(net, state_dim + len(self.angle_dims) + action_dim, state_dim)

    def inputs(self, s: Tensor, a: Tensor) -> Tensor:
        """Network input before standardisation."""
        return torch.cat((_features(s, self.angle_dims), a), dim=-1)

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        return s + self.unscale_out(self.net(self.scaled_in(self.inputs(s, a))))


class MLPObservation(_Normalised):
    """``g(s) = net(phi(s))``, ``phi`` encoding angles as cos/sin."""

    def __init__(self, net: PCNetwork, state_dim: int, obs_dim: int, angle_dims: Sequence[int] = ()) -> None:
        self.angle_dims = tuple(angle_dims)
        super().__init__(net, state_dim + len(self.angle_dims), obs_dim)

    def inputs(self, s: Tensor) -> Tensor:
        """Network input before standardisation."""
        return _features(s, self.angle_dims)

    def forward(self, s: Tensor) -> Tensor:
        return self.unscale_out(self.net(self.scaled_in(self.inputs(s))))


def _mlp(in_dim: int, hidden: int, out_dim: int, algorithm: str, T: int | None, x_lr: float | None) -> PCNetwork:
    return PCNetwork(tanh_mlp(in_dim, hidden, out_dim), algorithm=algorithm, T=T, x_lr=x_lr)


def _as_array(value: Any, name: str, ndim: int, dtype: torch.dtype) -> Tensor:
    try:
        tensor = torch.as_tensor(np.asarray(value) if not isinstance(value, Tensor) else value).to(dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"cannot be read as a tensor ({exc})") from exc
    if tensor.ndim != ndim:
        raise InvalidArgumentError(name, f"expected {ndim} dimensions (episodes, steps, size), "
                                         f"got shape {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor).all()):
        raise InvalidArgumentError(name, "contains NaN or inf")
    return tensor


def _train(module: _Normalised, inputs: Tensor, targets: Tensor, epochs: int, batch_size: int, lr: float,
           generator: torch.Generator) -> list[float]:
    """PC learning (``PCNetwork.train_step``) on standardised pairs; returns the energy per epoch."""
    module.fit_statistics(inputs, targets)
    x, y = module.scaled_in(inputs), module.scaled_out(targets)
    optimizer = torch.optim.Adam(module.net.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        total = 0.0
        for start in range(0, x.shape[0], batch_size):
            idx = order[start:start + batch_size]
            record = module.net.train_step(x[idx], y[idx], optimizer)
            total += record.energy[-1] * idx.numel()
        history.append(total / x.shape[0])
    return history


def learn_state_space(states: Any, actions: Any, observations: Any, *, hidden: int = 32, epochs: int = 40,
                      batch_size: int = 64, lr: float = 3e-3, algorithm: str = "exact", T: int | None = None,
                      x_lr: float | None = None, angle_dims: Sequence[int] = (), jitter: float = 1e-8,
                      seed: int = 0, dtype: torch.dtype | None = None) -> StateSpaceModel:
    """Learn ``f``, ``g`` and the noise covariances of a state-space model from trajectories.

    ``states``: ``(episodes, steps + 1, n)``, ``actions``: ``(episodes, steps, m)``,
    ``observations``: ``(episodes, steps + 1, p)`` (``observations[:, t]`` is the reading of
    ``states[:, t]``). ``f`` (residual) and ``g`` are two-hidden-layer tanh MLPs trained by the
    PC core (``PCNetwork.train_step`` with ``algorithm``, not by backprop) on standardised data.
    The default ``"exact"`` (Z-IL) makes local PC updates equal to backprop's, so the fit is as
    good as backprop's; ``"il"`` needs more epochs for the same accuracy.
    ``Q`` and ``R`` are the covariances of the training residuals (plus ``jitter``). The
    returned model's parameters are frozen; ``model.training_energy`` holds the per-epoch
    energies ``{"transition": [...], "observation": [...]}``.
    """
    dtype = dtype or torch.get_default_dtype()
    s = _as_array(states, "states", 3, dtype)
    a = _as_array(actions, "actions", 3, dtype)
    o = _as_array(observations, "observations", 3, dtype)
    episodes, steps_plus_one, n = s.shape
    if steps_plus_one < 2:
        raise InvalidArgumentError("states", "needs at least two time steps per episode")
    if tuple(a.shape[:2]) != (episodes, steps_plus_one - 1):
        raise InvalidArgumentError("actions", f"expected shape ({episodes}, {steps_plus_one - 1}, m), "
                                              f"got {tuple(a.shape)}")
    if tuple(o.shape[:2]) != (episodes, steps_plus_one):
        raise InvalidArgumentError("observations", f"expected shape ({episodes}, {steps_plus_one}, p), "
                                                   f"got {tuple(o.shape)}")
    if any(not 0 <= d < n for d in angle_dims):
        raise InvalidArgumentError("angle_dims", f"entries must index the {n} state entries, got {tuple(angle_dims)}")
    m, p = a.shape[-1], o.shape[-1]
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transition = MLPTransition(_mlp(n + len(angle_dims) + m, hidden, n, algorithm, T, x_lr), n, m, angle_dims)
        observation = MLPObservation(_mlp(n + len(angle_dims), hidden, p, algorithm, T, x_lr), n, p, angle_dims)
    transition.to(dtype)
    observation.to(dtype)
    s_prev, s_next = s[:, :-1].reshape(-1, n), s[:, 1:].reshape(-1, n)
    a_flat, s_all, o_all = a.reshape(-1, m), s.reshape(-1, n), o.reshape(-1, p)
    energy_f = _train(transition, transition.inputs(s_prev, a_flat), s_next - s_prev, epochs, batch_size, lr,
                      generator)
    energy_g = _train(observation, observation.inputs(s_all), o_all, epochs, batch_size, lr, generator)
    for module in (transition, observation):
        module.requires_grad_(False)
    with torch.no_grad():
        process_res = s_next - transition(s_prev, a_flat)
        obs_res = o_all - observation(s_all)
    eye_n, eye_p = torch.eye(n, dtype=dtype), torch.eye(p, dtype=dtype)
    q = torch.cov(process_res.T).reshape(n, n) + jitter * eye_n
    r = torch.cov(obs_res.T).reshape(p, p) + jitter * eye_p
    model = StateSpaceModel(transition, observation, state_dim=n, obs_dim=p, action_dim=m,
                            process_cov=q, obs_cov=r, dtype=dtype)
    model.training_energy = {"transition": energy_f, "observation": energy_g}
    return model
