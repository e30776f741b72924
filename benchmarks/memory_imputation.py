"""Memory imputation before a PC filter on NoisyPendulum with SensorDropout: RMSE against coasting.

Stores windows of readings from ``--stored`` past episodes (random torques, no dropout) in a
:class:`pcctrl.estimation.imputation.MemoryImputation` (UHN, Manhattan similarity, softmax
separation). Then, for dropout p in 0, 0.3, 0.6 (``pcctrl.envs.SensorDropout``, ``mode="nan"``)
and each of 3 seeds (``--episodes`` episodes of 200 steps each), runs a Laplace
:class:`~pcctrl.estimation.PCFilter` on the readings as they come (NaN entries: the filter coasts
on its model) and on the imputed readings, side by side on the same episodes. Two filter models:
the env's own (g = 10) and an approximate one (gravity ``--approx-g``, 30% low by default).
Prints RMSE of angle (wrapped) and angular velocity, mean over seeds with the per-seed range,
and the ratio imputed / coasting.

Run: ``python benchmarks/memory_imputation.py [--quick]``. 1 torch thread.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

import pcctrl.envs  # noqa: F401  (registers the env ids)
from pcctrl.envs import SensorDropout
from pcctrl.envs.rollout import random_rollout
from pcctrl.estimation import PCFilter
from pcctrl.estimation.imputation import MemoryImputation
from pcctrl.models import pendulum_model

DT, OBS_STD, PROC_STD, STEPS = 0.05, 0.3, 0.1, 200
ENV = "pcctrl/NoisyPendulum-v0"


def episode(p: float, seed: int, g: float, imputation: MemoryImputation | None) -> np.ndarray:
    """Squared errors (angle wrapped, velocity) per step of one filtered episode."""
    env = SensorDropout(gym.make(ENV, obs_noise_std=OBS_STD, process_noise_std=PROC_STD), p, seed=seed + 7919)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    filt = PCFilter(pendulum_model(DT, g=g, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=torch.float64))
    filt.reset(np.array([np.arctan2(obs[1], obs[0]), 0.0]), np.diag([OBS_STD**2, 1.0]))
    if imputation is not None:
        imputation.reset()
        obs = imputation(obs)
    belief = filt.correct(obs)
    errors = []
    for step in range(STEPS + 1):
        state = info["state"]
        mean = belief.mean.numpy()
        errors.append([(mean[0] - state[0] + np.pi) % (2 * np.pi) - np.pi, mean[1] - state[1]])
        if step == STEPS:
            break
        action = rng.uniform(-2.0, 2.0, size=(1,)).astype(np.float32)
        obs, _, _, _, info = env.step(action)
        if imputation is not None:
            obs = imputation(obs)
        belief = filt.update(obs, action)
    env.close()
    return np.square(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 episodes per seed, 50 stored episodes")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per seed (default 4)")
    parser.add_argument("--stored", type=int, default=None, help="past episodes stored (default 100)")
    parser.add_argument("--approx-g", type=float, default=7.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    episodes = args.episodes or (2 if args.quick else 4)
    stored = args.stored or (50 if args.quick else 100)
    start = time.perf_counter()
    past = [random_rollout(ENV, STEPS, 10_000 + i, obs_noise_std=OBS_STD, process_noise_std=PROC_STD).observations
            for i in range(stored)]
    imputation = MemoryImputation().fit(past)
    print(f"stored {imputation.stored} windows of {imputation.window} readings from {stored} episodes; "
          f"{episodes} episodes x {STEPS} steps per seed, 3 seeds")
    print("\n| filter model | dropout | coasting: angle / velocity RMSE | with imputation | ratio (angle, velocity) |")
    print("|---|---|---|---|---|")
    for label, g in (("env's own (g = 10)", 10.0), (f"approximate (g = {args.approx_g:g})", args.approx_g)):
        for p in (0.0, 0.3, 0.6):
            per_seed = {"coast": [], "impute": []}
            for seed in range(3):
                seeds = [1000 * seed + e for e in range(episodes)]
                for name, imp in (("coast", None), ("impute", imputation)):
                    squared = np.concatenate([episode(p, s, g, imp) for s in seeds])
                    per_seed[name].append(np.sqrt(squared.mean(0)))
            coast, impute = np.array(per_seed["coast"]), np.array(per_seed["impute"])

            def cell(r: np.ndarray) -> str:
                return (f"{r[:, 0].mean():.3f} [{r[:, 0].min():.3f}-{r[:, 0].max():.3f}] / "
                        f"{r[:, 1].mean():.3f} [{r[:, 1].min():.3f}-{r[:, 1].max():.3f}]")

            ratio = impute.mean(0) / coast.mean(0)
            print(f"| {label} | {p:.0%} | {cell(coast)} | {cell(impute)} | {ratio[0]:.3f}, {ratio[1]:.3f} |",
                  flush=True)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
