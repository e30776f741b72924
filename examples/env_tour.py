"""A tour of pcctrl's environments: make each one, step it with random actions, print what it sees.

Run: ``python examples/env_tour.py``
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import pcctrl.envs  # registers the pcctrl/... ids
from pcctrl.envs.wrappers import ObservationDelay, ObservationNoise, SensorDropout


def tour(env: gym.Env, label: str, steps: int = 5) -> None:
    """Reset with a seed, take a few random steps and print observation, reward and true state."""
    obs, info = env.reset(seed=0)
    env.action_space.seed(0)
    print(f"\n{label}: obs {env.observation_space}, action {env.action_space}")
    print(f"  reset   obs={np.round(obs, 3)}  state={np.round(info['state'], 3)}")
    for t in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        print(f"  step {t}  obs={np.round(obs, 3)}  reward={reward:+.3f}  state={np.round(info['state'], 3)}")
        if terminated or truncated:
            break
    env.close()


def main() -> None:
    """Tour every registered env, then one wrapped env."""
    for env_id in pcctrl.envs.ENV_IDS:
        tour(gym.make(env_id), env_id)
    env = gym.make("pcctrl/LinearTracking-v0")
    env = ObservationNoise(env, std=[0.05, 0.05, 0.0, 0.0], kind="ou", tau=0.5)  # coloured noise on y only
    env = SensorDropout(env, p=0.3, indices=[0, 1])  # position readings drop out (NaN), reference does not
    tour(ObservationDelay(env, delay=1), "LinearTracking + OU noise + 30% dropout + 1-step delay")


if __name__ == "__main__":
    main()
