"""Shared helpers of the pcctrl.io tests: a LinearTracking recording with a feedback policy."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

import pcctrl.envs  # noqa: F401  (registers the ids)

ROS_REASON = "needs the [ros] extra (rosbags, mcap, eclipse-zenoh): pip install 'pcctrl[ros]'"


def tracking_policy(seed: int):
    """PD tracking of the reference on the true state plus exploration noise (what a test rig would run)."""
    rng = np.random.default_rng(seed)

    def policy(obs: np.ndarray, info: dict) -> np.ndarray:
        p, v = info["state"][:2], info["state"][2:]
        return np.clip(2.0 * (obs[2:] - p) - 1.5 * v + 0.5 * rng.standard_normal(2), -1.0, 1.0)

    return policy


def record_tracking(path: Path, steps: int, seed: int, storage: str = "mcap") -> gym.Env:
    """Record ``steps`` of pcctrl/LinearTracking-v0 as an XY stage (joints x, y); returns the env."""
    from pcctrl.io import record_rollout

    env = gym.make("pcctrl/LinearTracking-v0", max_episode_steps=10 ** 9)
    record_rollout(path, env, tracking_policy(seed), steps, seed=seed, joints=["x", "y"], sensed=[0, 1],
                   storage=storage)
    return env
