"""ArmReach: a MuJoCo planar two-joint arm reaching a target, seen through noisy joint encoders."""

from __future__ import annotations

import os
from typing import Any

import mujoco
import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco import MujocoEnv
from gymnasium.spaces import Box

from pcctrl.errors import InvalidArgumentError

from .actions import checked_action

ASSET = os.path.join(os.path.dirname(__file__), "assets", "arm_reach.xml")
LINK_LENGTHS = (0.3, 0.25)
DEFAULT_CAMERA_CONFIG: dict[str, Any] = {"distance": 1.5, "elevation": -90.0, "azimuth": 90.0,
                                         "lookat": np.array([0.0, 0.0, 0.0])}


class ArmReachEnv(MujocoEnv, utils.EzPickle):
    """Planar 2-joint arm (links 0.30 m and 0.25 m, horizontal plane), torque control, reach a target.

    State (``info["state"]``, float64): ``[q_shoulder, q_elbow, dq_shoulder, dq_elbow]`` (rad, rad/s);
    the elbow is limited to ``[-2.8, 2.8]``. Action: ``Box(-1, 1, (2,), float32)``, motor torques
    (gears 1.0 and 0.6 N m). ``dt = 0.005 * frame_skip`` (default 0.02 s).

    Observation (float64, ``Box(-inf, inf)``): ``[q + v_q (2), target_xy (2)]`` with encoder noise
    ``v_q ~ N(0, obs_noise_std^2 I)``; with ``observe_velocity=True``
    ``[q + v_q (2), dq + v_dq (2), target_xy (2)]``, ``v_dq ~ N(0, velocity_noise_std^2 I)``.
    The target is observed exactly.

    Reward: ``-|fingertip - target| - ctrl_cost_weight |a|^2`` (``info["reward_dist"]``,
    ``info["reward_ctrl"]``). Never terminates; ``max_episode_steps=200`` (4 s).
    Start: joint angles and velocities ``~ U(-reset_noise_scale, reset_noise_scale)`` around zero
    (arm stretched along +x); target uniform in angle and in radius over ``target_radius_range`` m.
    ``info`` also has ``fingertip``, ``target`` and ``distance``. ``render_mode="rgb_array"``
    renders offscreen (top view); set ``MUJOCO_GL=egl`` (GPU/EGL) or ``osmesa`` (software).
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"]}

    def __init__(self, *, obs_noise_std: float = 0.01, observe_velocity: bool = False,
                 velocity_noise_std: float = 0.05, ctrl_cost_weight: float = 0.05,
                 reset_noise_scale: float = 0.1, target_radius_range: tuple[float, float] = (0.15, 0.5),
                 frame_skip: int = 4, xml_file: str = ASSET,
                 default_camera_config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Create the env; extra ``kwargs`` (``render_mode``, ``width``, ``height``...) go to MujocoEnv."""
        for name, value in (("obs_noise_std", obs_noise_std), ("velocity_noise_std", velocity_noise_std),
                            ("ctrl_cost_weight", ctrl_cost_weight), ("reset_noise_scale", reset_noise_scale)):
            if isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise InvalidArgumentError(name, f"must be a finite number >= 0, got {value!r}")
        lo, hi = target_radius_range
        if not 0 <= lo <= hi <= sum(LINK_LENGTHS):
            raise InvalidArgumentError("target_radius_range", f"must satisfy 0 <= low <= high <= "
                                                              f"{sum(LINK_LENGTHS)}, got {target_radius_range!r}")
        utils.EzPickle.__init__(self, obs_noise_std, observe_velocity, velocity_noise_std, ctrl_cost_weight,
                                reset_noise_scale, target_radius_range, frame_skip, xml_file,
                                default_camera_config, **kwargs)
        self.obs_noise_std = float(obs_noise_std)
        self.observe_velocity = bool(observe_velocity)
        self.velocity_noise_std = float(velocity_noise_std)
        self.ctrl_cost_weight = float(ctrl_cost_weight)
        self._reset_noise_scale = float(reset_noise_scale)
        self.target_radius_range = (float(lo), float(hi))
        size = 6 if self.observe_velocity else 4
        MujocoEnv.__init__(self, xml_file, frame_skip,
                           observation_space=Box(-np.inf, np.inf, shape=(size,), dtype=np.float64),
                           default_camera_config=default_camera_config or DEFAULT_CAMERA_CONFIG, **kwargs)
        self.metadata = {"render_modes": ["human", "rgb_array", "depth_array"],
                         "render_fps": int(np.round(1.0 / self.dt))}
        self._tip_site = self.model.site("fingertip").id

    @property
    def target(self) -> np.ndarray:
        """Target position (x, y) in metres."""
        return self.data.mocap_pos[0, :2].copy()

    @property
    def fingertip(self) -> np.ndarray:
        """Fingertip position (x, y) in metres."""
        return self.data.site_xpos[self._tip_site, :2].copy()

    def _get_obs(self) -> np.ndarray:
        """Noisy encoder readings and the target."""
        q = self.data.qpos + self.obs_noise_std * self.np_random.standard_normal(2)
        parts = [q]
        if self.observe_velocity:
            parts.append(self.data.qvel + self.velocity_noise_std * self.np_random.standard_normal(2))
        parts.append(self.target)
        return np.concatenate(parts)

    def _info(self) -> dict[str, Any]:
        """Ground truth for estimators."""
        tip, target = self.fingertip, self.target
        return {"state": self.state_vector(), "fingertip": tip, "target": target,
                "distance": float(np.linalg.norm(tip - target))}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply the torques for ``frame_skip`` physics steps; reward = -distance - effort."""
        a = np.clip(checked_action(action, self.action_space), -1.0, 1.0)
        self.do_simulation(a, self.frame_skip)
        mujoco.mj_kinematics(self.model, self.data)  # site positions of the new state, not the previous one
        info = self._info()
        reward_dist = -info["distance"]
        reward_ctrl = -self.ctrl_cost_weight * float(a @ a)
        info.update(reward_dist=reward_dist, reward_ctrl=reward_ctrl)
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward_dist + reward_ctrl, False, False, info

    def reset_model(self) -> np.ndarray:
        """Randomise the arm around the stretched pose and draw a new target."""
        s = self._reset_noise_scale
        qpos = self.init_qpos + self.np_random.uniform(-s, s, size=self.model.nq)
        qvel = self.init_qvel + self.np_random.uniform(-s, s, size=self.model.nv)
        radius = self.np_random.uniform(*self.target_radius_range)
        angle = self.np_random.uniform(-np.pi, np.pi)
        self.data.mocap_pos[0] = [radius * np.cos(angle), radius * np.sin(angle), 0.0]
        self.set_state(qpos, qvel)
        return self._get_obs()

    def _get_reset_info(self) -> dict[str, Any]:
        """Ground truth at reset."""
        return self._info()
