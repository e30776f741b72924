"""Planning latency of ``ActiveInferenceAgent.predict`` at the defaults, per planning call and per env step.

Usage::

    python benchmarks/agent_planning_latency.py [--env ID ...] [--warmup N] [--steps N]
        [--threads 1 2] [--device cpu|cuda] [--paths eager compiled]

For each env (default: Pendulum-v1, InvertedPendulum-v5, MountainCarContinuous-v0) an
``ActiveInferenceAgent(env_id, seed=0)`` at its defaults learns ``--warmup`` env steps (default
``learning_starts + train_freq``: at least one model fit and planned steps after it, so the
model and planner are in their steady state), then ``predict`` is timed on every one of
``--steps`` env steps of a fresh episode (seed 123, restarted when it ends). A planning call
happens every ``action_repeat`` env steps; "per env step" is the planning call's time divided by
``action_repeat`` (p50/p99 of that) and the mean of ``predict`` over all env steps (amortised,
including the steps that replay a held action). Each path (``eager``: the plain planner,
``compiled``: ``EFEPlanner(compile=True)``) runs from the same planner state on the same episode;
the table gives its first-call time (compile included) and the ratio to eager, and the largest
action difference between the paths.
"""

from __future__ import annotations

import argparse
import copy
import platform
import time

import gymnasium as gym
import numpy as np
import torch

import pcctrl.envs  # noqa: F401  (registers pcctrl/ ids)
from pcctrl.agents import ActiveInferenceAgent

DEFAULT_ENVS = ("Pendulum-v1", "InvertedPendulum-v5", "MountainCarContinuous-v0")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_path(agent: ActiveInferenceAgent, env_id: str, steps: int, device: torch.device) -> dict[str, object]:
    """Time ``agent.predict`` over ``steps`` env steps; per-call and per-step figures and the actions."""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=123)
    start = True
    plan_ms, step_ms, actions = [], [], []
    first_ms = float("nan")
    for i in range(steps):
        planned_before = len(agent._plan_ms)
        _sync(device)
        begin = time.perf_counter()
        action, _ = agent.predict(obs, episode_start=np.array([start]), deterministic=True)
        _sync(device)
        took = 1e3 * (time.perf_counter() - begin)
        if i == 0:
            first_ms = took
        elif len(agent._plan_ms) > planned_before:
            plan_ms.append(took)
        step_ms.append(took)
        actions.append(np.asarray(action, dtype=np.float64))
        obs, _, term, trunc, _ = env.step(action)
        start = bool(term or trunc)
        if start:
            obs, _ = env.reset()
    env.close()
    return {"plan": np.array(plan_ms), "step": np.array(step_ms[1:]), "first": first_ms,
            "actions": np.stack(actions)}


def measure(env_id: str, warmup: int | None, steps: int, threads: list[int], device: torch.device,
            paths: list[str]) -> list[dict[str, object]]:
    """Warm an agent up once (at ``threads[0]``), then run every thread count and path from the same planner state."""
    torch.set_num_threads(threads[0])
    agent = ActiveInferenceAgent(env_id, seed=0, device=device)
    cfg = agent.config
    n_warm = cfg.learning_starts + cfg.train_freq if warmup is None else warmup
    begin = time.perf_counter()
    agent.learn(n_warm)
    learn_s = time.perf_counter() - begin
    state = copy.deepcopy(agent.planner.state_dict())
    rows = []
    for n_threads, path in ((n, p) for n in threads for p in paths):
        torch.set_num_threads(n_threads)
        agent.planner.load_state_dict(copy.deepcopy(state))
        agent.planner.compile = path == "compiled"
        agent.hold = type(agent.hold)(cfg.action_repeat, agent.action_dim, agent.env.action_space.dtype)
        result = run_path(agent, env_id, steps, device)
        result.update(env=env_id, path=path, threads=n_threads, repeat=cfg.action_repeat, warmup=n_warm,
                      learn_s=learn_s, cfg=cfg)
        rows.append(result)
    agent.planner.compile = False
    return rows


def _fmt(rows: list[dict[str, object]]) -> None:
    eager = {(r["env"], r["threads"]): r for r in rows if r["path"] == "eager"}
    print("| env | threads | path | H x C x iters x members | repeat | call p50 ms | call p99 ms | call mean ms "
          "| env-step p50 ms | env-step p99 ms | env-step mean ms (amortised) | first call ms | vs eager "
          "| max action diff |")
    print("|" + "---|" * 14)
    for r in rows:
        plan, step, cfg, k = r["plan"], r["step"], r["cfg"], r["repeat"]
        base = eager.get((r["env"], r["threads"]))
        ratio = "" if base is None else f"{np.median(base['plan']) / np.median(plan):.2f}x"
        diff = "" if base is None else f"{np.abs(base['actions'] - r['actions']).max():.1e}"
        shape = f"{cfg.horizon}x{cfg.candidates}x{cfg.iterations}x{cfg.members}"
        print(f"| {r['env']} | {r['threads']} | {r['path']} | {shape} | {k} | {np.median(plan):.2f} | "
              f"{np.percentile(plan, 99):.2f} | {plan.mean():.2f} | {np.median(plan) / k:.2f} | "
              f"{np.percentile(plan, 99) / k:.2f} | {step.mean():.2f} | {r['first']:.0f} | {ratio} | {diff} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--warmup", type=int, default=None, help="env steps learned first (default: "
                                                                   "learning_starts + train_freq)")
    parser.add_argument("--steps", type=int, default=200, help="env steps timed per path")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--paths", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"])
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"# ActiveInferenceAgent planning latency — {platform.machine()}, torch {torch.__version__}, "
          f"device {device}, {args.steps} timed env steps per path")
    rows = []
    for env_id in args.env:
        rows += measure(env_id, args.warmup, args.steps, args.threads, device, args.paths)
        print(f"# {env_id}: warm-up {rows[-1]['warmup']} steps in {rows[-1]['learn_s']:.0f} s "
              f"({args.threads[0]} thread(s))", flush=True)
    _fmt(rows)


if __name__ == "__main__":
    main()
