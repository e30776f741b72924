"""ActiveInferenceAgent vs SB3 SAC (default hyperparameters): eval return against env steps.

Both run on the same seeds; each is evaluated every ``--eval-every`` steps on a separate env
(``--eval-episodes`` deterministic episodes). Prints the mean curves side by side, the steps to
reach the threshold (first evaluation whose mean over seeds reaches it) and the ratio agent/SAC,
and the agent's planning latency per control step. Example (the run recorded in docs/agents.md):

    python benchmarks/agent_sample_efficiency.py --env Pendulum-v1 --seeds 0 1 2 \
        --agent-steps 1000 --sac-steps 6000 --eval-every 200 --sac-eval-every 500

``--suite`` runs the issue-11 suite (``SUITE``: budgets and thresholds per env; ``--suite ID ...``
picks some, and any Gymnasium id is accepted, unlisted ones with threshold 0 unless
``--threshold``). Beside the steps to the threshold it reports whether the threshold is *held*:
the mean over seeds stays at or above it at every evaluation after it first reaches it, to the end
of the budget. ``--agent-steps``/``--sac-steps``/``--eval-every`` override the suite's budgets.

``--json PATH`` records every per-seed curve (agent and SAC; each evaluation's episode returns and
lengths), the overrides, the command line, machine, torch threads, planning latency (mean, p50,
p99) and wall times, rewritten after every evaluation so a killed run keeps its points. Seeds run
in separate processes (``--seeds 0``, ``--seeds 1`` ...) merge in ``benchmarks/plot_curves.py``,
which prints the suite summary of the merged records and draws the curves; ``--plot PNG`` does
the same for this run's record.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy

import pcctrl.envs  # noqa: F401  (registers pcctrl/ ids)
from pcctrl.agents.active_inference import ActiveInferenceAgent
from pcctrl.agents.results import atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_curves import held, merge, plot, summary_lines  # noqa: E402

THRESHOLDS = {"Pendulum-v1": -200.0, "InvertedPendulum-v5": 1000.0, "MountainCarContinuous-v0": 90.0,
              "pcctrl/NoisyPendulum-v0": -250.0, "pcctrl/PartialInvertedPendulum-v0": 1000.0}

# env id -> (agent steps, SAC steps, agent eval every, SAC eval every); thresholds from THRESHOLDS
# (HalfCheetah has none: its target is the agent at 20k steps against SAC at 100k).
SUITE: dict[str, tuple[int, int, int, int]] = {
    "Pendulum-v1": (3000, 20_000, 300, 1000),
    "InvertedPendulum-v5": (5000, 20_000, 500, 1000),
    "MountainCarContinuous-v0": (20_000, 50_000, 2000, 5000),
    "HalfCheetah-v5": (20_000, 100_000, 2000, 10_000),
    "pcctrl/NoisyPendulum-v0": (5000, 20_000, 500, 1000),
    "pcctrl/PartialInvertedPendulum-v0": (5000, 20_000, 500, 1000),
}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class CurveLog:
    """The ``--json`` record of a run: one entry per (env, agent, seed), rewritten after each evaluation."""

    def __init__(self, path: Path | None, overrides: dict) -> None:
        self.path = path
        self.data: dict[str, Any] = {
            "format": "pcctrl-curves-1", "command": " ".join(["python", *sys.argv]), "argv": sys.argv,
            "overrides": overrides, "started_utc": _now(), "updated_utc": _now(),
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpu_count": os.cpu_count(), "load_avg_start": list(os.getloadavg())},
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "records": []}

    def start(self, env_id: str, agent: str, seed: int, overrides: dict, threshold: float, steps: int,
              every: int, episodes: int) -> dict:
        """A new per-seed record (kept in the file from its first evaluation on)."""
        limit = getattr(gym.spec(env_id), "max_episode_steps", None)
        rec = {"env": env_id, "agent": agent, "seed": seed, "overrides": overrides, "threshold": threshold,
               "steps": steps, "eval_every": every, "eval_episodes": episodes, "max_episode_steps": limit,
               "points": [], "complete": False, "wall_s": 0.0, "started_utc": _now()}
        self.data["records"].append(rec)
        return rec

    def write(self) -> None:
        """Rewrite the file (atomically) with everything recorded so far."""
        if self.path is not None:
            self.data["updated_utc"] = _now()
            self.data["machine"]["load_avg_now"] = list(os.getloadavg())
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(self.data, indent=1))
            self.path.chmod(0o644)


def _latency(agent: ActiveInferenceAgent) -> dict[str, float]:
    """Planning time per planning call (mean, p50, p99 over the last 1000 calls) and per env step."""
    samples = np.asarray(agent._plan_ms, dtype=float)
    repeat = agent.config.action_repeat
    if samples.size == 0:
        return {"mean_ms": float("nan"), "p50_ms": float("nan"), "p99_ms": float("nan"), "action_repeat": repeat,
                "per_env_step_ms": float("nan"), "calls": 0}
    return {"mean_ms": float(samples.mean()), "p50_ms": float(np.percentile(samples, 50)),
            "p99_ms": float(np.percentile(samples, 99)), "action_repeat": repeat,
            "per_env_step_ms": float(samples.mean()) / repeat, "calls": int(samples.size)}


def _curve(model, env_id: str, seed: int, steps: int, every: int, episodes: int, learn_kw: dict,
           log: CurveLog | None = None, rec: dict | None = None) -> list[tuple[int, float]]:
    eval_env = gym.make(env_id)
    eval_env.reset(seed=10_000 + seed)
    curve = []
    done = 0
    t0 = time.time()
    while done < steps:
        chunk = min(every, steps - done)
        model.learn(chunk, reset_num_timesteps=done == 0, **learn_kw)
        done += chunk
        returns, lengths = evaluate_policy(model, eval_env, n_eval_episodes=episodes, warn=False,
                                           return_episode_rewards=True)
        mean = float(np.mean(returns))
        curve.append((done, mean))
        print(f"  {type(model).__name__:22s} seed {seed} step {done:6d} eval {mean:9.1f}", flush=True)
        if log is not None and rec is not None:
            rec["points"].append({"step": done, "mean": mean, "returns": [float(r) for r in returns],
                                  "lengths": [int(n) for n in lengths], "wall_s": round(time.time() - t0, 1)})
            rec["wall_s"] = round(time.time() - t0, 1)
            if isinstance(model, ActiveInferenceAgent):
                rec["plan_latency"] = _latency(model)
            rec["complete"] = done >= steps
            log.write()
    return curve


def _steps_to(curves: list[list[tuple[int, float]]], threshold: float) -> tuple[int | None, list[tuple[int, float]]]:
    steps = [s for s, _ in curves[0]]
    mean = [(s, float(np.mean([c[i][1] for c in curves]))) for i, s in enumerate(steps)]
    hit = next((s for s, m in mean if m >= threshold), None)
    return hit, mean


def _parse_overrides(parser: argparse.ArgumentParser, items: list[str]) -> dict:
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes FIELD=VALUE, got {item!r}")
        overrides[name] = ast.literal_eval(value)
    return overrides


def _agent_curves(env_id: str, args: argparse.Namespace, overrides: dict, threshold: float,
                  log: CurveLog) -> dict:
    """The agent's curves on ``env_id`` (printed and logged) and its part of the summary row."""
    t0 = time.time()
    agents, latencies = [], []
    for seed in args.seeds:
        agent = ActiveInferenceAgent(env_id, seed=seed, **overrides)
        rec = log.start(env_id, "ActiveInferenceAgent", seed, overrides, threshold, args.agent_steps,
                        args.eval_every, args.eval_episodes)
        agents.append(_curve(agent, env_id, seed, args.agent_steps, args.eval_every, args.eval_episodes, {},
                             log, rec))
        latencies.append(agent.plan_latency_ms)
    repeat = agent.config.action_repeat
    t_agent = time.time() - t0
    hit_a, mean_a = _steps_to(agents, threshold)
    print(f"\nActiveInferenceAgent mean eval return ({len(args.seeds)} seeds, {t_agent:.0f} s wall):")
    for s, m in mean_a:
        print(f"  {s:6d} {m:9.1f}")
    print(f"  steps to {threshold}: {hit_a if hit_a is not None else f'not within {args.agent_steps}'}; "
          f"held to {args.agent_steps}: {held(mean_a, threshold)}")
    per_step = np.mean(latencies) / repeat
    print(f"  planning latency per planning call (CPU, {torch.get_num_threads()} thread): "
          f"{np.mean(latencies):.2f} ms (per seed {[round(x, 2) for x in latencies]}); one call per "
          f"{repeat} env step(s): {per_step:.2f} ms per env step", flush=True)
    return {"agent_hit": hit_a, "agent_held": held(mean_a, threshold), "agent_final": mean_a[-1][1],
            "ms_per_step": per_step}


def run_env(env_id: str, args: argparse.Namespace, overrides: dict, threshold: float, log: CurveLog) -> dict:
    """Agent (and SAC unless skipped) curves on ``env_id``; prints them and returns a summary row."""
    print(f"{env_id}: threshold {threshold}, seeds {args.seeds}, agent overrides {overrides or 'none'}, "
          f"machine {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}",
          flush=True)
    row = {"env": env_id, "threshold": threshold, "agent_hit": None, "agent_held": None, "agent_final": None,
           "agent_steps": args.agent_steps, "ms_per_step": None, "sac_hit": None, "sac_final": None}
    if not args.skip_agent:
        row.update(_agent_curves(env_id, args, overrides, threshold, log))
    if args.skip_sac:
        return row
    t0 = time.time()
    sacs = []
    for seed in args.seeds:
        sac = SAC("MlpPolicy", gym.make(env_id), seed=seed, verbose=0, device="cpu")
        rec = log.start(env_id, "SAC", seed, {}, threshold, args.sac_steps, args.sac_eval_every, args.eval_episodes)
        sacs.append(_curve(sac, env_id, seed, args.sac_steps, args.sac_eval_every, args.eval_episodes, {},
                           log, rec))
    t_sac = time.time() - t0
    hit_s, mean_s = _steps_to(sacs, threshold)
    print(f"\nSAC (SB3 defaults) mean eval return ({len(args.seeds)} seeds, {t_sac:.0f} s wall):")
    for s, m in mean_s:
        print(f"  {s:6d} {m:9.1f}")
    print(f"  steps to {threshold}: {hit_s if hit_s is not None else f'not within {args.sac_steps}'}")
    hit_a = row["agent_hit"]
    if not args.skip_agent:
        if hit_a is None:
            print("\nratio steps-to-threshold agent/SAC: undefined (the agent did not reach the threshold)")
        elif hit_s is None:
            print(f"\nratio steps-to-threshold agent/SAC: < {hit_a / args.sac_steps:.3f} (SAC did not reach it)")
        else:
            print(f"\nratio steps-to-threshold agent/SAC: {hit_a / hit_s:.3f}")
    row.update(sac_hit=hit_s, sac_final=mean_s[-1][1])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--suite", nargs="*", default=None, metavar="ENV_ID",
                        help="run the suite (all of SUITE, or the ids given; any env id is accepted)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--agent-steps", type=int, default=None)
    parser.add_argument("--sac-steps", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--sac-eval-every", type=int, default=None)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--skip-sac", action="store_true")
    parser.add_argument("--skip-agent", action="store_true",
                        help="SAC only (its curves merge with separate agent runs in plot_curves.py)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="AIFConfig overrides for the agent, e.g. --set iterations=5 horizon=25")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="write every per-seed curve and the run's settings here (after each evaluation)")
    parser.add_argument("--plot", type=Path, default=None, metavar="PNG",
                        help="draw this run's curves (benchmarks/plot_curves.py merges several runs)")
    args = parser.parse_args()
    overrides = _parse_overrides(parser, args.set)
    torch.set_num_threads(args.threads)
    log = CurveLog(args.json, overrides)
    given = {k: getattr(args, k) for k in ("agent_steps", "sac_steps", "eval_every", "sac_eval_every")}
    envs = [args.env] if args.suite is None else (args.suite or list(SUITE))
    rows = []
    for env_id in envs:
        budget = SUITE.get(env_id, (1000, 6000, 200, 500)) if args.suite is not None else (1000, 6000, 200, 500)
        for key, default in zip(given, budget):
            setattr(args, key, given[key] if given[key] is not None else default)
        threshold = args.threshold if args.threshold is not None else THRESHOLDS.get(env_id, 0.0)
        rows.append(run_env(env_id, args, overrides, threshold, log))
        print(flush=True)
    if len(rows) > 1 or args.suite is not None:
        print("suite summary (mean over seeds; held = at or above the threshold at every evaluation after "
              "first reaching it):")
        print(f"  {'env':36s} {'thresh':>8s} {'agent hit':>10s} {'held':>5s} {'final':>8s} {'steps':>6s} "
              f"{'ms/step':>8s} {'SAC hit':>8s} {'SAC final':>9s}")
        for r in rows:
            def fmt(v: object) -> str:
                return "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
            print(f"  {r['env']:36s} {r['threshold']:8.1f} {fmt(r['agent_hit']):>10s} {str(r['agent_held']):>5s} "
                  f"{fmt(r['agent_final']):>8s} {r['agent_steps']:6d} {fmt(r['ms_per_step']):>8s} {fmt(r['sac_hit']):>8s} "
                  f"{fmt(r['sac_final']):>9s}")
    log.write()
    if args.json is not None or args.plot is not None:
        groups = merge(dict(r, file=str(args.json)) for r in log.data["records"])
        print()
        for line in summary_lines(groups):
            print(line)
        if args.plot is not None:
            print(f"wrote {plot(groups, args.plot)}")


if __name__ == "__main__":
    main()
