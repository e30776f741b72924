"""Planning latency of ``ActiveInferenceAgent.predict`` at the defaults, per planning call and per env step.

Usage::

    python benchmarks/agent_planning_latency.py [--env ID ...] [--warmup N] [--steps N]
        [--threads 1 2] [--device cpu|cuda] [--paths eager compiled graph]

For each env (default: Pendulum-v1, InvertedPendulum-v5, MountainCarContinuous-v0) an
``ActiveInferenceAgent(env_id, seed=0)`` at its defaults learns ``--warmup`` env steps (default
``learning_starts + train_freq``: at least one model fit and planned steps after it, so the
model and planner are in their steady state), then ``predict`` is timed on every one of
``--steps`` env steps of a fresh episode (seed 123, restarted when it ends). A planning call
happens every ``action_repeat`` env steps; "per env step" is the planning call's time divided by
``action_repeat`` (p50/p99 of that) and the mean of ``predict`` over all env steps (amortised,
including the steps that replay a held action); the CPU-time column (``time.process_time``
of the process, all threads) is less sensitive to other jobs on a shared machine. Each path
(``eager``: the plain planner, ``compiled``: ``EFEPlanner(compile=True)``, ``graph``:
``EFEPlanner(cuda_graph=True)``, CUDA only) gets its own
planner from the same state; their ``predict`` calls alternate on every env step (the env follows the first path), so load drifts
hit both alike. The table gives each path's first call (compile included), the ratio of p50s to
eager, and the largest action difference between the paths.
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
from pcctrl.agents.action_hold import ActionHold
from pcctrl.agents.active_inference import _planner

DEFAULT_ENVS = ("Pendulum-v1", "InvertedPendulum-v5", "MountainCarContinuous-v0")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _paths(agent: ActiveInferenceAgent, paths: list[str]) -> dict[str, tuple[object, object, object]]:
    """One (planner, action hold, perception) per path, all from the agent's present planner state."""
    state = copy.deepcopy(agent.planner.state_dict())
    cfg, space = agent.config, agent.env.action_space
    out = {}
    for path in paths:
        path_cfg = cfg.with_overrides(compile_planner=path == "compiled", cuda_graph_planner=path == "graph")
        planner = _planner(agent.learner, agent.planner.preference, space, path_cfg, agent.device)
        agent.learner.configure(planner)
        planner.load_state_dict(copy.deepcopy(state))
        out[path] = (planner, ActionHold(cfg.action_repeat, agent.action_dim, space.dtype),
                     copy.deepcopy(agent.perception))
    return out


def run_paths(agent: ActiveInferenceAgent, env_id: str, steps: int, device: torch.device,
              paths: list[str]) -> dict[str, dict[str, object]]:
    """Time ``agent.predict`` of every path, interleaved, on each of ``steps`` env steps.

    The env follows the first path's actions; per path: planning-call and per-step times, the
    first call (compile included) and the actions.
    """
    parts = _paths(agent, paths)
    res = {p: {"plan": [], "cpu": [], "step": [], "actions": [], "first": float("nan")} for p in paths}
    env = gym.make(env_id)
    obs, _ = env.reset(seed=123)
    start = True
    for i in range(steps):
        for path in paths:
            agent.planner, agent.hold, agent.perception = parts[path]
            planned_before = len(agent._plan_ms)
            _sync(device)
            begin, cpu = time.perf_counter(), time.process_time()
            action, _ = agent.predict(obs, episode_start=np.array([start]), deterministic=True)
            _sync(device)
            took, cpu = 1e3 * (time.perf_counter() - begin), 1e3 * (time.process_time() - cpu)
            r = res[path]
            if i == 0:
                r["first"] = took
            else:
                r["step"].append(took)
                if len(agent._plan_ms) > planned_before:
                    r["plan"].append(took)
                    r["cpu"].append(cpu)
            r["actions"].append(np.asarray(action, dtype=np.float64))
            if path == paths[0]:
                env_action = action
        obs, _, term, trunc, _ = env.step(env_action)
        start = bool(term or trunc)
        if start:
            obs, _ = env.reset()
    env.close()
    return {p: {"plan": np.array(r["plan"]), "cpu": np.array(r["cpu"]), "step": np.array(r["step"]),
                "first": r["first"],
                "actions": np.stack(r["actions"])} for p, r in res.items()}


def measure(env_id: str, warmup: int | None, steps: int, threads: list[int], device: torch.device,
            paths: list[str]) -> list[dict[str, object]]:
    """Warm an agent up once (at ``threads[0]``), then time every thread count, all paths interleaved."""
    torch.set_num_threads(threads[0])
    agent = ActiveInferenceAgent(env_id, seed=0, device=device)
    cfg = agent.config
    n_warm = cfg.learning_starts + cfg.train_freq if warmup is None else warmup
    begin = time.perf_counter()
    agent.learn(n_warm)
    learn_s = time.perf_counter() - begin
    rows = []
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for path, result in run_paths(agent, env_id, steps, device, paths).items():
            result.update(env=env_id, path=path, threads=n_threads, repeat=cfg.action_repeat, warmup=n_warm,
                          learn_s=learn_s, cfg=cfg)
            rows.append(result)
    return rows


def _fmt(rows: list[dict[str, object]]) -> None:
    eager = {(r["env"], r["threads"]): r for r in rows if r["path"] == "eager"}
    print("| env | threads | path | H x C x iters x members | repeat | call p50 ms | call p99 ms | call mean ms "
          "| env-step p50 ms | env-step p99 ms | env-step mean ms (amortised) | call CPU-time p50 ms "
          "| first call ms | vs eager | max action diff |")
    print("|" + "---|" * 15)
    for r in rows:
        plan, step, cfg, k = r["plan"], r["step"], r["cfg"], r["repeat"]
        base = eager.get((r["env"], r["threads"]))
        ratio = "" if base is None else f"{np.median(base['plan']) / np.median(plan):.2f}x"
        diff = "" if base is None else f"{np.abs(base['actions'] - r['actions']).max():.1e}"
        shape = f"{cfg.horizon}x{cfg.candidates}x{cfg.iterations}x{cfg.members}"
        print(f"| {r['env']} | {r['threads']} | {r['path']} | {shape} | {k} | {np.median(plan):.2f} | "
              f"{np.percentile(plan, 99):.2f} | {plan.mean():.2f} | {np.median(plan) / k:.2f} | "
              f"{np.percentile(plan, 99) / k:.2f} | {step.mean():.2f} | {np.median(r['cpu']):.2f} | "
              f"{r['first']:.0f} | {ratio} | {diff} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--warmup", type=int, default=None, help="env steps learned first (default: "
                                                                   "learning_starts + train_freq)")
    parser.add_argument("--steps", type=int, default=200, help="env steps timed per path")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--paths", nargs="+", default=None, choices=["eager", "compiled", "graph"],
                        help="default: eager and compiled, and graph (EFEPlanner(cuda_graph=True)) on CUDA")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.paths is None:
        args.paths = ["eager", "compiled"] + (["graph"] if device.type == "cuda" else [])
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
