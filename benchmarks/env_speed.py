"""Steps per second of every pcctrl env, raw (``gymnasium.make``) and inside all the sensor wrappers.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/env_speed.py [--steps 20000] [--repeats 3]

Each measurement resets with a seed, steps with pre-sampled random actions (resetting at
episode ends, resets included in the time) and reports the best of ``--repeats`` runs.
The wrapped stack is ObservationNoise(OU) -> SensorDropout(p=0.1) -> ObservationDelay(2)
-> ActionNoise -> ActionDelay(1). Imports no torch of its own and changes no global state.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from pcctrl.envs import ENV_IDS
from pcctrl.envs.wrappers import ActionDelay, ActionNoise, ObservationDelay, ObservationNoise, SensorDropout


def wrap_all(env: gym.Env) -> gym.Env:
    """The benchmark's wrapper stack."""
    env = ObservationNoise(env, std=0.05, kind="ou", tau=0.2)
    env = SensorDropout(env, p=0.1)
    env = ObservationDelay(env, delay=2)
    env = ActionNoise(env, std=0.1)
    return ActionDelay(env, delay=1)


def steps_per_second(make: Callable[[], gym.Env], steps: int, repeats: int) -> float:
    """Best-of-``repeats`` steps per second over ``steps`` random-action steps."""
    env = make()
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(min(steps, 1000))]
    best = 0.0
    for r in range(repeats):
        env.reset(seed=r)
        start = time.perf_counter()
        for i in range(steps):
            _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
            if terminated or truncated:
                env.reset()
        best = max(best, steps / (time.perf_counter() - start))
    env.close()
    return best


def main(argv: list[str] | None = None) -> None:
    """Print a markdown table of steps per second, raw and wrapped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000, help="steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per env (best is reported)")
    args = parser.parse_args(argv)
    print(f"# env_speed: {args.steps} steps, best of {args.repeats}; python {platform.python_version()}, "
          f"gymnasium {gym.__version__}, numpy {np.__version__}, {platform.machine()}")
    print("| env | raw steps/s | wrapped steps/s | wrapped / raw |")
    print("|---|---:|---:|---:|")
    for env_id in ENV_IDS:
        raw = steps_per_second(lambda: gym.make(env_id), args.steps, args.repeats)
        wrapped = steps_per_second(lambda: wrap_all(gym.make(env_id)), args.steps, args.repeats)
        print(f"| {env_id} | {raw:,.0f} | {wrapped:,.0f} | {wrapped / raw:.2f} |", flush=True)


if __name__ == "__main__":
    main()
