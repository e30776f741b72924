"""Config defaults derived from an env's spaces and time step, for env ids with no family entry."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym

LOOKAHEAD_S = 1.0
"""Seconds the planner looks ahead when the env states its time step (Pendulum-v1: 20 x 0.05 s)."""
MIN_CONTROL_DT = 0.02
"""Shortest planner step in seconds: faster envs hold each action for several env steps."""


def env_dt(env: gym.Env) -> float | None:
    """The env's time step in seconds (``env.unwrapped.dt``), or ``None`` if it states none."""
    dt = getattr(env.unwrapped, "dt", None)
    try:
        dt = float(dt)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return dt if math.isfinite(dt) and dt > 0 else None


def derived_overrides(env: gym.Env) -> dict[str, Any]:
    """:class:`AIFConfig` fields derived from ``env`` (see ``docs/agents.md``, "Defaults that transfer").

    - time step ``dt``: ``action_repeat = max(1, round(MIN_CONTROL_DT / dt))`` and
      ``horizon = clip(round(LOOKAHEAD_S / (dt * action_repeat)), 10, 30)`` (no ``dt``: unchanged);
    - spaces: hidden width ``clip(2^ceil(log2(8 (obs_dim + action_dim))), 64, 256)`` for both
      layers; ``candidates = 100 * min(3, ceil(action_dim / 2))`` with ``elites = candidates / 10``;
    - episode length (``spec.max_episode_steps``): ``train_freq = min(200, length)`` so the model is
      refitted at least once per episode's worth of steps.
    """
    out: dict[str, Any] = {}
    obs_dim, action_dim = int(env.observation_space.shape[0]), int(env.action_space.shape[0])
    dt = env_dt(env)
    if dt is not None:
        repeat = max(1, round(MIN_CONTROL_DT / dt))
        out["action_repeat"] = repeat
        out["horizon"] = int(min(30, max(10, round(LOOKAHEAD_S / (dt * repeat)))))
    width = int(min(256, max(64, 2 ** math.ceil(math.log2(8 * (obs_dim + action_dim))))))
    out["hidden"] = (width, width)
    out["reward_hidden"] = (width, width)
    candidates = 100 * min(3, math.ceil(action_dim / 2))
    out["candidates"], out["elites"] = candidates, candidates // 10
    spec = getattr(env, "spec", None)
    length = getattr(spec, "max_episode_steps", None)
    if isinstance(length, int) and length > 0:
        out["train_freq"] = min(200, length)
    return out
