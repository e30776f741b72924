"""NoisyPendulum: Pendulum-v1 dynamics seen through a noisy angle sensor, no velocity."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from pcctrl.errors import InvalidArgumentError

from .actions import checked_action


class NoisyPendulumEnv(PendulumEnv):
    """Pendulum-v1 (same dynamics, action, reward, start state) observing only a noisy angle.

    State (``info["state"]``, float64): ``[theta, theta_dot]``; ``theta`` is not wrapped,
    0 is upright. Dynamics per step (``dt = 0.05``, ``g = 10``, ``m = l = 1``)::

        theta_dot' = clip(theta_dot + (3 g / (2 l) sin(theta) + 3 / (m l^2) u) dt + w, -8, 8)
        theta'     = theta + theta_dot' dt,      w ~ N(0, process_noise_std^2)

    With ``process_noise_std = 0`` (default) this is exactly Pendulum-v1.

    Observation (float32, no velocity):
      - ``observation_mode="cos_sin"`` (default): ``[cos(theta) + v1, sin(theta) + v2]``,
        ``v ~ N(0, obs_noise_std^2 I)``, space ``Box(-inf, inf, (2,))``;
      - ``observation_mode="angle"``: ``wrap(theta + v)`` in ``[-pi, pi]``, space ``Box(-pi, pi, (1,))``.

    Action: torque ``Box(-2, 2, (1,), float32)`` (clipped). Reward (true state):
    ``-(wrap(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2)``. Never terminates; registered
    with ``max_episode_steps=200``. Start: ``theta ~ U(-pi, pi)``, ``theta_dot ~ U(-1, 1)``.
    Rendering uses Pendulum-v1's pygame renderer (``pip install "gymnasium[classic-control]"``).
    """

    def __init__(self, render_mode: str | None = None, g: float = 10.0, obs_noise_std: float = 0.1,
                 process_noise_std: float = 0.0,
                 observation_mode: Literal["cos_sin", "angle"] = "cos_sin") -> None:
        """Create the env; noise levels are standard deviations (>= 0)."""
        super().__init__(render_mode=render_mode, g=g)
        for name, value in (("obs_noise_std", obs_noise_std), ("process_noise_std", process_noise_std)):
            if isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise InvalidArgumentError(name, f"must be a finite number >= 0, got {value!r}")
        if observation_mode not in ("cos_sin", "angle"):
            raise InvalidArgumentError("observation_mode", f"must be 'cos_sin' or 'angle', got {observation_mode!r}")
        self.obs_noise_std = float(obs_noise_std)
        self.process_noise_std = float(process_noise_std)
        self.observation_mode = observation_mode
        if observation_mode == "cos_sin":
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        else:
            self.observation_space = spaces.Box(-np.pi, np.pi, shape=(1,), dtype=np.float32)

    def _get_obs(self) -> np.ndarray:
        """Noisy angle reading of the current state."""
        theta = float(self.state[0])
        if self.observation_mode == "cos_sin":
            clean = np.array([np.cos(theta), np.sin(theta)])
            return (clean + self.obs_noise_std * self.np_random.standard_normal(2)).astype(np.float32)
        noisy = theta + self.obs_noise_std * self.np_random.standard_normal()
        wrapped = np.clip((noisy + np.pi) % (2 * np.pi) - np.pi, -np.pi, np.pi)
        return np.array([wrapped], dtype=np.float32)

    def _info(self) -> dict[str, Any]:
        """Ground truth for estimators."""
        return {"state": np.array(self.state, dtype=np.float64)}

    def step(self, u: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance one step of Pendulum-v1 dynamics (plus optional process noise)."""
        th, thdot = self.state
        u = float(np.clip(checked_action(u, self.action_space), -self.max_torque, self.max_torque)[0])
        self.last_u = u
        wrapped = ((th + np.pi) % (2 * np.pi)) - np.pi
        cost = wrapped**2 + 0.1 * thdot**2 + 0.001 * u**2
        accel = 3 * self.g / (2 * self.l) * np.sin(th) + 3.0 / (self.m * self.l**2) * u
        newthdot = thdot + accel * self.dt
        if self.process_noise_std > 0:
            newthdot += self.process_noise_std * self.np_random.standard_normal()
        newthdot = np.clip(newthdot, -self.max_speed, self.max_speed)
        self.state = np.array([th + newthdot * self.dt, newthdot])
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), -float(cost), False, False, self._info()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset as Pendulum-v1 (``options`` ``x_init``/``y_init`` bound the start angle/velocity)."""
        obs, _ = super().reset(seed=seed, options=options)
        return obs, self._info()
