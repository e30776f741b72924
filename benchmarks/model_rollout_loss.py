"""One-step vs k-step rollout training loss of the PC-trained ``DynamicsEnsemble``: open-loop error.

Usage: ``OMP_NUM_THREADS=1 nice -n 19 python benchmarks/model_rollout_loss.py [--steps 1000]
[--seeds 3] [--ks 3 5] [--train 3000] [--held-out 1000] [--no-matched-time]``.

Per env and seed: a seeded data set from a fixed policy (Pendulum-v1: uniform random torques,
200-step episodes; InvertedPendulum-v5: a noisy PD balance policy ``a = 10 theta + theta_dot +
N(0, 1)``, episodes cut at 100 steps, about a third end by falling), ``--train`` transitions to
train on and ``--held-out`` from other seeds' episodes to test on. Each configuration trains a
fresh 5-member (64, 64) ensemble (the agent's defaults, Z-IL) for the same ``--steps`` minibatch
steps: one-step, the k-step rollout loss for each ``--ks``, and (unless ``--no-matched-time``)
one-step trained for as long in wall time as the largest k took. Reported: open-loop RMSE at
horizons 1, 5, 10, 20 (every member rolled out from the true start state under the true actions,
on every 20-step window inside a held-out episode; error in units of each state entry's held-out
std; RMSE per member, then the mean over members), one-step held-out NLL, training wall time;
mean ± std over seeds, and the ratio to one-step.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from pcctrl.models.dynamics_ensemble import DynamicsEnsemble
from pcctrl.models.rollout_loss import sequence_starts
from pcctrl.models.validated_fit import Split, held_out_nll

HORIZONS = (1, 5, 10, 20)
ENVS = {"Pendulum-v1": 200, "InvertedPendulum-v5": 100}  # env id -> episode cut


def collect(env_id: str, n: int, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``n`` transitions ``(obs, actions, next_obs, episode_ends)`` from the env's fixed seeded policy."""
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows, length = [], 0
    for _ in range(n):
        if env_id.startswith("InvertedPendulum"):
            action = np.clip([10.0 * obs[1] + obs[3] + rng.standard_normal()], -3, 3)
        else:
            action = rng.uniform(-2, 2, 1)
        nxt, _, terminated, truncated, _ = env.step(action.astype(np.float32))
        length += 1
        end = terminated or truncated or length >= ENVS[env_id]
        rows.append((obs, action, nxt, end))
        obs, length = (env.reset()[0], 0) if end else (nxt, length)
    o, a, no, e = zip(*rows)
    as_t = lambda x: torch.as_tensor(np.array(x), dtype=torch.float32)  # noqa: E731
    return as_t(o), as_t(a), as_t(no), torch.as_tensor(e)


@torch.no_grad()
def open_loop_rmse(ens: DynamicsEnsemble, data: tuple[Tensor, Tensor, Tensor, Tensor]) -> list[float]:
    """Mean over members of the normalised open-loop RMSE at each of ``HORIZONS``."""
    obs, actions, next_obs, ends = data
    starts = sequence_starts(obs, next_obs, max(HORIZONS), ends)
    scale = obs.std(0)
    s = obs[starts].unsqueeze(1).expand(-1, ens.members, -1)
    out = []
    for t in range(max(HORIZONS)):
        s = ens.predict(s, actions[starts + t]).mean
        if t + 1 in HORIZONS:
            err = (s - next_obs[starts + t].unsqueeze(1)) / scale
            out.append(float(err.square().mean((0, 2)).sqrt().mean()))
    return out


def run_config(env_id: str, seed: int, k: int, steps: int, train: tuple, test: tuple) -> dict[str, object]:
    """Train one ensemble; its errors, held-out NLL and wall time."""
    obs, actions, _, _ = train
    ens = DynamicsEnsemble(obs.shape[1], actions.shape[1], members=5, hidden=(64, 64), seed=seed)
    begin = time.perf_counter()
    losses = ens.fit(*train[:3], steps, rollout_steps=k, episode_ends=train[3])
    wall = time.perf_counter() - begin
    nll = held_out_nll(ens, Split(*test[:3]))
    return {"rmse": open_loop_rmse(ens, test), "nll": nll, "wall": wall, "steps": steps, "loss": losses[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ks", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--no-matched-time", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# k-step rollout loss — {platform.machine()}, torch {torch.__version__}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}, {args.seeds} seeds, {args.train} train / {args.held_out} "
          f"held-out transitions, {args.steps} steps, 5 members (64, 64), Z-IL")
    for env_id in args.envs:
        results: dict[str, list[dict[str, object]]] = {}
        for seed in range(args.seeds):
            train = collect(env_id, args.train, seed)
            test = collect(env_id, args.held_out, 1000 + seed)
            configs = [("one-step", 1, args.steps)] + [(f"k={k}", k, args.steps) for k in args.ks]
            for name, k, steps in configs:
                results.setdefault(name, []).append(run_config(env_id, seed, k, steps, train, test))
            if not args.no_matched_time:
                big = f"k={max(args.ks)}"
                ratio = float(results[big][-1]["wall"]) / float(results["one-step"][-1]["wall"])  # type: ignore[arg-type]
                name = f"one-step, {big}'s time"
                results.setdefault(name, []).append(
                    run_config(env_id, seed, 1, round(args.steps * ratio), train, test))
            print(f"  [{env_id} seed {seed} done]", flush=True)
        report(env_id, results)


def report(env_id: str, results: dict[str, list[dict[str, object]]]) -> None:
    """Markdown table: RMSE per horizon (mean ± std over seeds), ratio to one-step, NLL, time."""
    base = np.mean([r["rmse"] for r in results["one-step"]], 0)
    print(f"\n### {env_id}: open-loop RMSE (held-out std units), mean ± std over {len(results['one-step'])} seeds")
    heads = " | ".join(f"h={h}" for h in HORIZONS)
    ratios = " | ".join(f"/1-step h={h}" for h in HORIZONS)
    print(f"| loss | steps | {heads} | {ratios} | held-out NLL | train s |")
    print("|---" * (4 + 2 * len(HORIZONS)) + "|")
    for name, runs in results.items():
        rmse = np.array([r["rmse"] for r in runs])
        cells = " | ".join(f"{m:.4f} ± {s:.4f}" for m, s in zip(rmse.mean(0), rmse.std(0)))
        rel = " | ".join(f"{m / b:.2f}" for m, b in zip(rmse.mean(0), base))
        nll = np.array([r["nll"] for r in runs], dtype=float)
        wall = np.mean([r["wall"] for r in runs])
        steps = int(np.mean([r["steps"] for r in runs]))
        print(f"| {name} | {steps} | {cells} | {rel} | {nll.mean():.3f} ± {nll.std():.3f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
