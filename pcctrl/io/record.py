"""Record a Gymnasium rollout as a ROS 2 bag: JointState readings, Float64MultiArray commands and true state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .bag import BagWriter
from .messages import float64_array, joint_state

Policy = Callable[[np.ndarray, dict[str, Any]], Any]


def record_rollout(path: str | Path, env: Any, policy: Policy, steps: int, *, seed: int,
                   joints: Sequence[str], sensed: Sequence[int], start_ns: int = 1_700_000_000_000_000_000,
                   reading_topic: str = "/joint_states", command_topic: str = "/command",
                   state_topic: str | None = "/state", storage: Literal["mcap", "sqlite3"] = "mcap") -> Path:
    """Run ``policy(obs, info) -> action`` for ``steps`` env steps and write what a robot would log.

    Per step ``t`` (time ``start_ns + t * env.unwrapped.dt``): the reading ``obs[sensed]`` as a
    ``sensor_msgs/JointState`` (positions of ``joints``) on ``reading_topic``; the action sent
    in reply as a ``std_msgs/Float64MultiArray`` on ``command_topic`` (logged 1 µs after its
    reading); the true state ``info["state"]`` as a Float64MultiArray on ``state_topic`` (the
    ground truth a motion-capture system would give; ``None`` leaves it out).
    """
    dt_ns = int(round(float(env.unwrapped.dt) * 1e9))
    idx = np.asarray(sensed, dtype=np.int64)
    obs, info = env.reset(seed=seed)
    with BagWriter(path, storage) as bag:
        for t in range(steps + 1):
            ns = start_ns + t * dt_ns
            bag.write(reading_topic, joint_state(ns, joints, np.asarray(obs)[idx]), ns)
            if state_topic is not None:
                bag.write(state_topic, float64_array(info["state"]), ns)
            if t == steps:
                break
            action = np.asarray(policy(obs, info), dtype=np.float64)
            bag.write(command_topic, float64_array(action), ns + 1000)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                raise RuntimeError("the env ended the episode; make it with a max_episode_steps above steps")
    return Path(path)
