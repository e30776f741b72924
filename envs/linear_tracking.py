"""LinearTracking: a planar double integrator with known linear-Gaussian model, tracking a reference."""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pcctrl.errors import InvalidArgumentError

from .actions import checked_action


class LinearTrackingEnv(gym.Env):
    """A 2-D point mass (double integrator) tracking a moving reference; exactly linear-Gaussian.

    State ``s = [px, py, vx, vy]`` (``info["state"]``), action ``a`` in ``Box(-1, 1, (2,), float32)``
    (clipped; force ``= action_scale * a`` on a unit mass). With step ``dt``::

        s_{t+1} = A s_t + B a_t + w_t,    w_t ~ N(0, Q)
        y_t     = C s_t + v_t,            v_t ~ N(0, R)

    ``A = [[I, dt I], [0, I]]``, ``B = action_scale [[dt^2/2 I], [dt I]]``, ``C = [I, 0]``,
    ``Q = q [[dt^3/3 I, dt^2/2 I], [dt^2/2 I, dt I]]`` (white acceleration noise of spectral
    density ``q = accel_noise_psd``), ``R = obs_noise_std^2 I``. ``s_0 ~ N(initial_mean,
    initial_cov)``. All are float64 numpy attributes of the env (``A, B, C, Q, R, dt,
    initial_mean, initial_cov``), so a Kalman filter built from them is the optimal filter.

    Reference ``r_t`` (``info["reference"]``): ``"circle"`` (default) is
    ``radius [cos(omega t dt + phi), sin(omega t dt + phi)]`` with ``phi ~ U(-pi, pi)`` at reset;
    ``"setpoint"`` is a fixed point ``~ U([-radius, radius]^2)`` drawn at reset.

    Observation (float64, ``Box(-inf, inf, (4,))``): ``[y_t (noisy position, 2), r_t (2)]``.
    Reward for the step ``t -> t+1``: ``-((C s_{t+1} - r_{t+1})^T tracking_cost (C s_{t+1} - r_{t+1})
    + a_t^T control_cost a_t)`` with ``tracking_cost = tracking_weight I`` and
    ``control_cost = ctrl_cost_weight I``. Never terminates; ``max_episode_steps=200``.
    """

    metadata = {"render_modes": []}

    def __init__(self, *, dt: float = 0.1, action_scale: float = 1.0, accel_noise_psd: float = 0.05,
                 obs_noise_std: float = 0.1, reference: Literal["circle", "setpoint"] = "circle",
                 radius: float = 1.0, omega: float = 0.5, tracking_weight: float = 1.0,
                 ctrl_cost_weight: float = 0.01, render_mode: str | None = None) -> None:
        """Build the model matrices; all noise levels and weights must be finite and >= 0."""
        positive = {"dt": dt, "action_scale": action_scale}
        non_negative = {"accel_noise_psd": accel_noise_psd, "obs_noise_std": obs_noise_std, "radius": radius,
                        "tracking_weight": tracking_weight, "ctrl_cost_weight": ctrl_cost_weight}
        for name, value in positive.items():
            if isinstance(value, bool) or not np.isfinite(value) or value <= 0:
                raise InvalidArgumentError(name, f"must be a finite number > 0, got {value!r}")
        for name, value in non_negative.items():
            if isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise InvalidArgumentError(name, f"must be a finite number >= 0, got {value!r}")
        if not np.isfinite(omega):
            raise InvalidArgumentError("omega", f"must be finite, got {omega!r}")
        if reference not in ("circle", "setpoint"):
            raise InvalidArgumentError("reference", f"must be 'circle' or 'setpoint', got {reference!r}")
        if render_mode is not None:
            raise InvalidArgumentError("render_mode",
                                       f"must be None (LinearTracking has no renderer), got {render_mode!r}")
        self.render_mode = render_mode
        eye, zero = np.eye(2), np.zeros((2, 2))
        self.dt = float(dt)
        self.A = np.block([[eye, dt * eye], [zero, eye]])
        self.B = action_scale * np.vstack([0.5 * dt**2 * eye, dt * eye])
        self.C = np.hstack([eye, zero])
        self.Q = accel_noise_psd * np.block([[dt**3 / 3 * eye, dt**2 / 2 * eye], [dt**2 / 2 * eye, dt * eye]])
        self.R = obs_noise_std**2 * eye
        self.initial_mean = np.zeros(4)
        self.initial_cov = np.diag([0.25, 0.25, 0.01, 0.01])
        self.tracking_cost = tracking_weight * eye
        self.control_cost = ctrl_cost_weight * eye
        self.reference = reference
        self.radius, self.omega = float(radius), float(omega)
        self._q_chol = np.linalg.cholesky(self.Q) if accel_noise_psd > 0 else np.zeros((4, 4))
        self._r_std = float(obs_noise_std)
        self._p0_chol = np.linalg.cholesky(self.initial_cov)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float64)
        self.state = np.zeros(4)
        self._t = 0
        self._phase = 0.0
        self._setpoint = np.zeros(2)

    def reference_at(self, t: int) -> np.ndarray:
        """The reference position at step ``t`` of the current episode."""
        if self.reference == "setpoint":
            return self._setpoint.copy()
        angle = self.omega * t * self.dt + self._phase
        return self.radius * np.array([np.cos(angle), np.sin(angle)])

    def _observe(self) -> tuple[np.ndarray, dict[str, Any]]:
        """Noisy position plus reference, and the ground-truth info."""
        y = self.C @ self.state + self._r_std * self.np_random.standard_normal(2)
        ref = self.reference_at(self._t)
        info = {"state": self.state.copy(), "reference": ref.copy()}
        return np.concatenate([y, ref]), info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw ``s_0 ~ N(initial_mean, initial_cov)`` and the reference, return ``[y_0, r_0]``."""
        super().reset(seed=seed)
        self._t = 0
        self._phase = float(self.np_random.uniform(-np.pi, np.pi))
        self._setpoint = self.np_random.uniform(-self.radius, self.radius, size=2)
        self.state = self.initial_mean + self._p0_chol @ self.np_random.standard_normal(4)
        return self._observe()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply the (clipped) action, sample process and sensor noise, return the tracking reward."""
        a = np.clip(checked_action(action, self.action_space), -1.0, 1.0)
        w = self._q_chol @ self.np_random.standard_normal(4)
        self.state = self.A @ self.state + self.B @ a + w
        self._t += 1
        obs, info = self._observe()
        err = self.C @ self.state - info["reference"]
        reward = -float(err @ self.tracking_cost @ err + a @ self.control_cost @ a)
        info["action"] = a
        return obs, reward, False, False, info
