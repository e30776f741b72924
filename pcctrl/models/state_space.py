"""``StateSpaceModel``: ``s_t = f(s_{t-1}, a_{t-1}) + w``, ``o_t = g(s_t) + v`` with Gaussian noise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from .covariance import Covariance, resolve_dtype
from ..errors import InvalidArgumentError

Transition = Callable[[Tensor, Tensor], Tensor]
Observation = Callable[[Tensor], Tensor]


def _check_dim(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(name, f"must be an integer >= {minimum}, got {value!r}")
    return value


def batched_jacobian(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """``(fn(x), d fn / d x)`` for a row-wise function ``(B, n) -> (B, k)``; Jacobian ``(B, k, n)``.

    Rows must not interact (true of any per-sample model), so the gradient of an output
    entry summed over the batch holds every row's Jacobian row: one reverse pass per output
    entry (``k`` is small for state-space models; this beats ``torch.func.jacrev``'s overhead).
    """
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        out = fn(leaf)
        if not out.requires_grad:
            return out, torch.zeros(*out.shape, x.shape[-1], dtype=out.dtype, device=out.device)
        rows = []
        for k in range(out.shape[-1]):
            (row,) = torch.autograd.grad(out[:, k].sum(), leaf, retain_graph=k < out.shape[-1] - 1,
                                         allow_unused=True)
            rows.append(torch.zeros_like(leaf) if row is None else row)
    return out.detach(), torch.stack(rows, dim=1)


class NumpyKernel(Protocol):
    """The model's ``f`` and ``g`` with their Jacobians for one state, on float64 numpy arrays.

    The PC filter's batch-1 CPU path (:mod:`pcctrl.estimation.small_gauss_newton`) calls it
    instead of the torch functions: on a 2-D state, torch's per-op overhead is most of the cost.
    It must compute the same functions as the model's torch methods (tests check each kernel).
    """

    def transition(self, s: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(f(s, a), F)`` for ``s`` of shape ``(n,)``, ``a`` of shape ``(m,)``."""
        ...

    def observation(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(g(s), G)`` for ``s`` of shape ``(n,)``."""
        ...

    def observe(self, s: np.ndarray) -> np.ndarray:
        """``g(s)`` alone."""
        ...


class StateSpaceModel(nn.Module):
    """A nonlinear state-space generative model with Gaussian process and sensor noise.

    ``transition(s, a)`` maps ``(B, state_dim)`` and ``(B, action_dim)`` to ``(B, state_dim)``;
    ``observation(s)`` maps ``(B, state_dim)`` to ``(B, obs_dim)``. Either may be an
    ``nn.Module`` (its parameters become the model's) or a plain function; rows must be
    independent. Noise: give ``process_cov`` or ``process_precision`` and ``obs_cov`` or
    ``obs_precision`` (scalar, diagonal vector or matrix). The process covariance may be
    singular (positive semi-definite) when fixed. ``learnable=True`` makes both noise
    covariances parameters. Jacobians come from autograd (``torch.func``) unless a subclass
    overrides :meth:`linearize_transition` / :meth:`linearize_observation`.
    """

    is_linear: bool = False

    def __init__(self, transition: Transition, observation: Observation, state_dim: int, obs_dim: int,
                 action_dim: int = 0, *, process_cov: Any = None, process_precision: Any = None,
                 obs_cov: Any = None, obs_precision: Any = None, learnable: bool = False,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self._init_model(transition, observation, state_dim, obs_dim, action_dim, process_cov,
                         process_precision, obs_cov, obs_precision, learnable, dtype)

    def _init_model(self, transition: Transition, observation: Observation, state_dim: int, obs_dim: int,
                    action_dim: int, process_cov: Any, process_precision: Any, obs_cov: Any,
                    obs_precision: Any, learnable: bool, dtype: torch.dtype | None) -> None:
        self.state_dim = _check_dim(state_dim, "state_dim", 1)
        self.obs_dim = _check_dim(obs_dim, "obs_dim", 1)
        self.action_dim = _check_dim(action_dim, "action_dim", 0)
        if not callable(transition):
            raise InvalidArgumentError("transition", "must be callable as transition(s, a)")
        if not callable(observation):
            raise InvalidArgumentError("observation", "must be callable as observation(s)")
        self.f = transition
        self.g = observation
        dtype = resolve_dtype(dtype, process_cov, process_precision, obs_cov, obs_precision)
        self.process_noise = Covariance("process", self.state_dim, process_cov, process_precision,
                                        learnable=learnable, dtype=dtype, allow_singular=True)
        self.obs_noise = Covariance("obs", self.obs_dim, obs_cov, obs_precision, learnable=learnable, dtype=dtype)
        self._check_functions()

    def _check_functions(self) -> None:
        s = torch.zeros(1, self.state_dim, dtype=self.dtype, device=self.device)
        a = torch.zeros(1, self.action_dim, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            s_next, o = self.transition(s, a), self.observe(s)
        for name, out, size in (("transition", s_next, self.state_dim), ("observation", o, self.obs_dim)):
            if not isinstance(out, Tensor) or tuple(out.shape) != (1, size):
                shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                raise InvalidArgumentError(name, f"must return shape (batch, {size}), got {shape} for batch 1")

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the noise model (the filter computes in it)."""
        return self._reference().dtype

    @property
    def device(self) -> torch.device:
        """Device of the noise model (the filter computes on it)."""
        return self._reference().device

    def _reference(self) -> Tensor:
        noise = self.obs_noise
        return noise.raw if noise.learnable else noise.cov

    def transition(self, s: Tensor, a: Tensor) -> Tensor:
        """Predicted next state ``f(s, a)``."""
        return self.f(s, a)

    def observe(self, s: Tensor) -> Tensor:
        """Predicted observation ``g(s)``."""
        return self.g(s)

    def linearize_transition(self, s: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        """``(f(s, a), F)`` with ``F = d f / d s`` of shape ``(B, state_dim, state_dim)``."""
        return batched_jacobian(lambda x: self.f(x, a), s)

    def linearize_observation(self, s: Tensor) -> tuple[Tensor, Tensor]:
        """``(g(s), G)`` with ``G = d g / d s`` of shape ``(B, obs_dim, state_dim)``."""
        return batched_jacobian(self.g, s)

    def numpy_kernel(self) -> NumpyKernel | None:
        """A numpy twin of ``f``/``g`` for the filter's batch-1 path, or ``None`` (the default: torch only).

        Subclasses with closed-form functions return one; a subclass of those that changes the
        functions must override this too (the built-in kernels return ``None`` for subclasses).
        """
        return None

    def process_cov(self) -> Tensor:
        """Process noise covariance ``Q``."""
        return self.process_noise.matrix()

    def obs_cov(self) -> Tensor:
        """Observation noise covariance ``R``."""
        return self.obs_noise.matrix()

    @property
    def has_learnable(self) -> bool:
        """Whether any tensor of the model requires grad (then filters do not cache constants)."""
        return any(p.requires_grad for p in self.parameters())

    def extra_repr(self) -> str:
        return f"state_dim={self.state_dim}, action_dim={self.action_dim}, obs_dim={self.obs_dim}"
