"""EFE planner latency: one ``plan`` call (CEM and MPPI) at batch 1 and 64, on one device.

Usage: ``python benchmarks/planner_latency.py [--device cpu|cuda] [--repeats 30] [--threads 1]``.
Known pendulum dynamics (the same step as ``pcctrl/NoisyPendulum-v0``), a goal prior at the
upright, horizon 20, 200 candidates, 3 iterations: the agents' default planner settings.
Prints median and p99 milliseconds per call, and plans per second; on CUDA each row also runs
with ``cuda_graph=True`` (the whole search replayed as one CUDA graph) and gives its speed-up and
largest action difference against the eager planner, the two planners alternating call by call.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from pcctrl.control import EFEPlanner, GoalPrior, known_dynamics

DT, G = 0.05, 10.0


def pendulum_step(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Observation-space pendulum step on ``[cos, sin, theta_dot]``."""
    theta = torch.atan2(s[:, 1:2], s[:, :1])
    omega = (s[:, 2:] + (1.5 * G * torch.sin(theta) + 3.0 * a.clamp(-2, 2)) * DT).clamp(-8, 8)
    theta = theta + omega * DT
    return torch.cat((torch.cos(theta), torch.sin(theta), omega), 1)


def time_plans(planners: list[EFEPlanner], obs: torch.Tensor, repeats: int,
               device: torch.device) -> tuple[list[tuple[float, float]], float]:
    """Median and p99 seconds per call of each planner (calls alternate), and their largest action difference."""
    for _ in range(3):
        for planner in planners:
            planner.plan(obs)
    times: list[list[float]] = [[] for _ in planners]
    diff = 0.0
    for _ in range(repeats):
        actions = []
        for planner, own in zip(planners, times):
            if device.type == "cuda":
                torch.cuda.synchronize()
            begin = time.perf_counter()
            actions.append(planner.plan(obs))
            if device.type == "cuda":
                torch.cuda.synchronize()
            own.append(time.perf_counter() - begin)
        diff = max(diff, max(float((a - actions[0]).abs().max()) for a in actions))
    return [(float(np.median(t)), float(np.percentile(t, 99))) for t in times], diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"# EFE planner latency — {platform.machine()}, torch {torch.__version__}, device {device}, "
          f"torch threads {args.threads}; pendulum, horizon 20, 200 candidates, 3 iterations")
    graphs = [False, True] if device.type == "cuda" else [False]
    print("| method | batch | path | median ms | p99 ms | plans/s | vs eager | max action diff |")
    print("|---|---|---|---|---|---|---|---|")
    for method in ("cem", "mppi"):
        for batch in (1, 64):
            prior = GoalPrior([1.0, 0.0, 0.0], precision=[1.0, 1.0, 0.1], action_precision=0.001).to(device)
            planners = [EFEPlanner(known_dynamics(pendulum_step), prior, torch.tensor([-2.0]), torch.tensor([2.0]),
                                   horizon=20, method=method, seed=0, device=device, cuda_graph=graph)
                        for graph in graphs]
            angle = torch.linspace(-3.0, 3.0, batch)
            obs = torch.stack((angle.cos(), angle.sin(), torch.zeros(batch)), 1).to(device)
            results, diff = time_plans(planners, obs, args.repeats, device)
            for graph, (med, p99) in zip(graphs, results):
                print(f"| {method} | {batch} | {'cuda graph' if graph else 'eager'} | {med * 1e3:.2f} | "
                      f"{p99 * 1e3:.2f} | {batch / med:.0f} | {results[0][0] / med:.2f}x | "
                      f"{diff if graph else 0.0:.1e} |")


if __name__ == "__main__":
    main()
