"""PartialInvertedPendulum: Gymnasium's InvertedPendulum-v5 observing noisy positions only."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.inverted_pendulum_v5 import DEFAULT_CAMERA_CONFIG, InvertedPendulumEnv
from gymnasium.spaces import Box

from .actions import checked_action
from .noise import check_std


class PartialInvertedPendulumEnv(InvertedPendulumEnv):
    """InvertedPendulum-v5 (same model, action, reward, termination) seeing only noisy positions.

    State (``info["state"]``, float64): ``[cart_x, pole_angle, cart_vx, pole_angular_velocity]``.
    Observation (float64, ``Box(-inf, inf, (2,))``): ``[cart_x + v1, pole_angle + v2]``,
    ``v ~ N(0, diag(obs_noise_std^2))`` (``obs_noise_std`` a number or a pair, default 0.01).
    Action: cart force ``Box(-3, 3, (1,), float32)``. Reward: +1 per step while healthy.
    Termination: when the **true** ``|pole_angle| > 0.2`` rad or the state is not finite (the
    noisy reading never ends an episode). ``max_episode_steps=1000``; ``dt = 0.04``.
    Other keyword arguments (``reset_noise_scale``, ``frame_skip``, ``render_mode``, ``width``,
    ``height``...) are InvertedPendulum-v5's.
    """

    def __init__(self, obs_noise_std: float | tuple[float, float] = 0.01, xml_file: str = "inverted_pendulum.xml",
                 frame_skip: int = 2, default_camera_config: dict[str, float | int] = DEFAULT_CAMERA_CONFIG,
                 reset_noise_scale: float = 0.01, **kwargs: Any) -> None:
        """Create the env; ``obs_noise_std`` is the sensor standard deviation (>= 0)."""
        self.obs_noise_std = check_std(obs_noise_std, (2,), "obs_noise_std")
        super().__init__(xml_file=xml_file, frame_skip=frame_skip, default_camera_config=default_camera_config,
                         reset_noise_scale=reset_noise_scale, **kwargs)
        utils.EzPickle.__init__(self, obs_noise_std, xml_file, frame_skip, default_camera_config,
                                reset_noise_scale, **kwargs)
        self.observation_space = Box(-np.inf, np.inf, shape=(2,), dtype=np.float64)
        self.observation_structure = {"qpos": self.data.qpos.size}

    def _get_obs(self) -> np.ndarray:
        """Noisy cart position and pole angle."""
        return self.data.qpos + self.obs_noise_std * self.np_random.standard_normal(2)

    def step(self, action: Any) -> tuple[np.ndarray, int, bool, bool, dict[str, Any]]:
        """Simulate; terminate on the true pole angle, return a noisy position reading."""
        # Out-of-range forces are clamped by the model's ctrlrange, as in InvertedPendulum-v5.
        self.do_simulation(checked_action(action, self.action_space), self.frame_skip)
        state = self.state_vector()
        terminated = bool(not np.isfinite(state).all() or abs(state[1]) > 0.2)
        reward = int(not terminated)
        info = {"reward_survive": reward, "state": state}
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, terminated, False, info

    def _get_reset_info(self) -> dict[str, Any]:
        """Ground truth at reset."""
        return {"state": self.state_vector()}
