"""The known state-space model of ``pcctrl/NoisyPendulum-v0`` (cos/sin angle sensor)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .state_space import NumpyKernel, StateSpaceModel


class _PendulumKernel:
    """:class:`PendulumModel`'s functions and Jacobians for one state, in float64 Python arithmetic."""

    def __init__(self, model: "PendulumModel") -> None:
        self.dt, self.k, self.kt = model.dt, 1.5 * model.gravity * model.dt, 3.0 * model.dt
        self.max_speed, self.max_torque = model.max_speed, model.max_torque

    def transition(self, s: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta, omega = s.tolist()
        torque = min(max(a.tolist()[0], -self.max_torque), self.max_torque)
        # The same operation order as the torch step, so float64 results agree to the last bits.
        raw = (omega + self.k * math.sin(theta)) + self.kt * torque
        speed = min(max(raw, -self.max_speed), self.max_speed)
        inside = 1.0 if abs(raw) <= self.max_speed else 0.0
        cos = math.cos(theta)
        jac = np.array([[1.0 + inside * (cos * (self.dt * self.k)), inside * self.dt],
                        [inside * (cos * self.k), inside]])
        return np.array([theta + self.dt * speed, speed]), jac

    def observation(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = s.tolist()[0]
        c, sn = math.cos(theta), math.sin(theta)
        return np.array([c, sn]), np.array([[-sn, 0.0], [c, 0.0]])

    def observe(self, s: np.ndarray) -> np.ndarray:
        theta = s.tolist()[0]
        return np.array([math.cos(theta), math.sin(theta)])


class PendulumModel(StateSpaceModel):
    """The pendulum's :class:`StateSpaceModel` (built by :func:`pendulum_model`), with analytic Jacobians.

    ``f([theta, theta_dot], u) = [theta + w dt, w]`` with
    ``w = clip(theta_dot + (1.5 g sin(theta) + 3 clip(u, +-max_torque)) dt, +-max_speed)``;
    ``g(s) = [cos theta, sin theta]``. :meth:`linearize_transition` and
    :meth:`linearize_observation` return the closed-form Jacobians in a few tensor ops instead
    of one autograd pass per output entry; they follow autograd's convention at the speed clip
    (the derivative passes where the unclipped speed lies in ``[-max_speed, max_speed]``, ends
    included), so they equal :func:`~pcctrl.models.batched_jacobian` of the same functions.
    """

    def __init__(self, dt: float, g: float, max_speed: float, max_torque: float, *, process_cov: Tensor,
                 obs_cov: Tensor, dtype: torch.dtype) -> None:
        self.dt, self.gravity = float(dt), float(g)
        self.max_speed, self.max_torque = float(max_speed), float(max_torque)
        super().__init__(self._transition, self._observation, state_dim=2, obs_dim=2, action_dim=1,
                         process_cov=process_cov, obs_cov=obs_cov, dtype=dtype)
        k = 1.5 * self.gravity * self.dt
        # F = _f_base + u (_f_const + cos(theta) _f_cos), row-major, u = 1 inside the speed clip else 0.
        self.register_buffer("_f_base", torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=dtype), persistent=False)
        self.register_buffer("_f_const", torch.tensor([0.0, self.dt, 0.0, 1.0], dtype=dtype), persistent=False)
        self.register_buffer("_f_cos", torch.tensor([self.dt * k, 0.0, k, 0.0], dtype=dtype), persistent=False)
        # G = ([cos theta, sin theta] @ _g_basis).view(2, 2) = [[-sin theta, 0], [cos theta, 0]].
        self.register_buffer("_g_basis", torch.tensor([[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0]], dtype=dtype),
                             persistent=False)

    def to_checkpoint(self) -> dict[str, Any]:
        """Constants, noise covariances and dtype as checkpoint data."""
        return {"dt": self.dt, "g": self.gravity, "max_speed": self.max_speed, "max_torque": self.max_torque,
                "process_cov": self.process_cov().detach().clone(), "obs_cov": self.obs_cov().detach().clone(),
                "dtype": self.dtype, "state_dict": {k: v.detach().clone() for k, v in self.state_dict().items()}}

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> "PendulumModel":
        """Rebuild a :meth:`to_checkpoint` model; its tensors are restored bit for bit."""
        model = cls(data["dt"], data["g"], data["max_speed"], data["max_torque"], process_cov=data["process_cov"],
                    obs_cov=data["obs_cov"], dtype=data["dtype"])
        model.load_state_dict(data["state_dict"], strict=True)
        return model

    def _raw_speed(self, s: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        theta = s[:, :1]
        accel = torch.add(s[:, 1:], torch.sin(theta), alpha=1.5 * self.gravity * self.dt)
        return theta, torch.add(accel, a[:, :1].clamp(-self.max_torque, self.max_torque), alpha=3.0 * self.dt)

    def _next(self, theta: Tensor, raw: Tensor) -> Tensor:
        speed = raw.clamp(-self.max_speed, self.max_speed)
        return torch.cat((torch.add(theta, speed, alpha=self.dt), speed), dim=-1)

    def _transition(self, s: Tensor, a: Tensor) -> Tensor:
        return self._next(*self._raw_speed(s, a))

    def _observation(self, s: Tensor) -> Tensor:
        theta = s[:, :1]
        return torch.cat((torch.cos(theta), torch.sin(theta)), dim=-1)

    def linearize_transition(self, s: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        """``(f(s, a), F)``, ``F = [[1 + dt c u, dt u], [c u, u]]``, ``c = 1.5 g dt cos(theta)``,
        ``u`` 1 inside the speed clip, else 0."""
        theta, raw = self._raw_speed(s, a)
        inside = (raw.abs() <= self.max_speed).to(s.dtype)
        jac = torch.addcmul(self._f_base, inside, torch.addcmul(self._f_const, torch.cos(theta), self._f_cos))
        return self._next(theta, raw), jac.view(-1, 2, 2)

    def linearize_observation(self, s: Tensor) -> tuple[Tensor, Tensor]:
        """``(g(s), G)``, ``G = [[-sin theta, 0], [cos theta, 0]]``."""
        y = self._observation(s)
        return y, (y @ self._g_basis).view(-1, 2, 2)

    def numpy_kernel(self) -> NumpyKernel | None:
        """The closed-form functions in float64 Python arithmetic (``None`` for subclasses)."""
        return _PendulumKernel(self) if type(self) is PendulumModel else None


def pendulum_model(dt: float = 0.05, g: float = 10.0, *, obs_noise_std: float = 0.1,
                   process_noise_std: float = 0.0, max_speed: float = 8.0, max_torque: float = 2.0,
                   velocity_jitter: float = 1e-6, dtype: torch.dtype | None = None) -> PendulumModel:
    """State ``[theta, theta_dot]``, action torque, observation ``[cos theta, sin theta]``.

    The same dynamics as the env (``m = l = 1``, semi-implicit Euler, speed clipped). Process
    noise enters the velocity and through it the angle, so ``Q = sigma^2 [[dt^2, dt], [dt, 1]]``
    (singular); ``velocity_jitter`` is added to the velocity variance so that ``Q`` stays
    usable when ``process_noise_std = 0``. Jacobians are analytic (:class:`PendulumModel`).
    """
    dtype = dtype or torch.get_default_dtype()
    var = process_noise_std**2
    q = torch.tensor([[var * dt * dt, var * dt], [var * dt, var + velocity_jitter]], dtype=dtype)
    r = torch.full((2,), obs_noise_std**2, dtype=dtype)
    return PendulumModel(dt, g, max_speed, max_torque, process_cov=q, obs_cov=r, dtype=dtype)
