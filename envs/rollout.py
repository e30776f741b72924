"""Random-action rollouts that keep the true state: data for fitting and scoring estimators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from pcctrl.errors import InvalidArgumentError


@dataclass(frozen=True)
class Rollout:
    """One episode: ``states`` and ``observations`` have one more row than ``actions``/``rewards``.

    ``states[t]`` is ``info["state"]`` after reset (t = 0) or after the t-th step; all float64.
    """

    states: np.ndarray
    actions: np.ndarray
    observations: np.ndarray
    rewards: np.ndarray


def random_rollout(env: str | gym.Env, steps: int, seed: int, **make_kwargs: Any) -> Rollout:
    """Reset with ``seed`` and take ``steps`` uniform random actions from a seeded generator.

    ``env`` is an env id (made with ``make_kwargs`` and closed afterwards) or an env instance.
    Stops early if the episode ends. The env must put its true state in ``info["state"]``.
    """
    if steps < 1:
        raise InvalidArgumentError("steps", f"must be at least 1, got {steps}")
    owned = isinstance(env, str)
    env = gym.make(env, **make_kwargs) if owned else env
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(f"random_rollout needs a Box action space, got {type(space).__name__}")
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    if "state" not in info:
        raise KeyError("the env does not report its true state in info['state']")
    states, actions, observations, rewards = [info["state"]], [], [obs], []
    for _ in range(steps):
        action = rng.uniform(space.low, space.high, size=space.shape).astype(space.dtype)
        obs, reward, terminated, truncated, info = env.step(action)
        states.append(info["state"])
        actions.append(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    if owned:
        env.close()
    as64 = lambda rows: np.asarray(rows, dtype=np.float64)  # noqa: E731
    return Rollout(as64(states), as64(actions), as64(observations), as64(rewards))
