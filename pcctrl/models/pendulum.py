"""The known state-space model of ``pcctrl/NoisyPendulum-v0`` (cos/sin angle sensor)."""

from __future__ import annotations

import torch
from torch import Tensor

from .state_space import StateSpaceModel


def pendulum_model(dt: float = 0.05, g: float = 10.0, obs_noise_std: float = 0.1,
                   process_noise_std: float = 0.0, max_speed: float = 8.0, max_torque: float = 2.0,
                   velocity_jitter: float = 1e-6, dtype: torch.dtype | None = None) -> StateSpaceModel:
    """State ``[theta, theta_dot]``, action torque, observation ``[cos theta, sin theta]``.

    The same dynamics as the env (``m = l = 1``, semi-implicit Euler, speed clipped). Process
    noise enters the velocity and through it the angle, so ``Q = sigma^2 [[dt^2, dt], [dt, 1]]``
    (singular); ``velocity_jitter`` is added to the velocity variance so that ``Q`` stays
    usable when ``process_noise_std = 0``.
    """

    def transition(s: Tensor, a: Tensor) -> Tensor:
        theta, theta_dot = s[:, 0], s[:, 1]
        torque = a[:, 0].clamp(-max_torque, max_torque)
        accel = 1.5 * g * torch.sin(theta) + 3.0 * torque
        new_dot = (theta_dot + accel * dt).clamp(-max_speed, max_speed)
        return torch.stack((theta + new_dot * dt, new_dot), dim=-1)

    def observation(s: Tensor) -> Tensor:
        return torch.stack((torch.cos(s[:, 0]), torch.sin(s[:, 0])), dim=-1)

    dtype = dtype or torch.get_default_dtype()
    var = process_noise_std**2
    q = torch.tensor([[var * dt * dt, var * dt], [var * dt, var + velocity_jitter]], dtype=dtype)
    r = torch.full((2,), obs_noise_std**2, dtype=dtype)
    return StateSpaceModel(transition, observation, state_dim=2, obs_dim=2, action_dim=1,
                           process_cov=q, obs_cov=r, dtype=dtype)
