"""The ``pcctrl compare`` command: argument parser and runner.

With no arguments it runs the default quick comparison (ActiveInferenceAgent against SAC on
Pendulum-v1, two seeds, :data:`DEFAULT_STEPS` steps). Settings come from, in order: the command
line, ``--config FILE`` (a run's ``config.json``), the defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pcctrl.errors import InvalidArgumentError

DEFAULT_ENVS = ["Pendulum-v1"]
DEFAULT_AGENTS = "aif,sac"
DEFAULT_STEPS = 3000
DEFAULT_SEEDS = 2
DEFAULT_EVAL_EPISODES = 3
DEFAULT_OUT = "runs/compare"


def add_compare_parser(subparsers: Any) -> None:
    """Add the ``compare`` command to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    parser = subparsers.add_parser(
        "compare",
        help="PC agents against SB3 baselines (SAC, TD3, PPO): same envs, seeds, budgets; CSV, plot, table",
        description="Train and evaluate agents on the same environments, seeds and step budgets; write "
                    "results.csv, curves.png, summary.md and config.json to --out. With no arguments: "
                    f"{DEFAULT_AGENTS} on {DEFAULT_ENVS[0]}, {DEFAULT_SEEDS} seeds, {DEFAULT_STEPS:,} steps. "
                    "Rerunning into the same --out resumes from the finished jobs.",
    )
    parser.add_argument("--env", action="append", default=None, metavar="ID",
                        help=f"Gymnasium id; repeat or separate by commas for several (default {DEFAULT_ENVS[0]})")
    parser.add_argument("--agents", default=None, metavar="A,B",
                        help=f"registered agent names, comma-separated: aif, sac, td3, ppo, ... (default {DEFAULT_AGENTS})")
    parser.add_argument("--steps", type=int, default=None, metavar="N",
                        help=f"environment steps per job (default {DEFAULT_STEPS})")
    parser.add_argument("--seeds", type=int, default=None, metavar="K",
                        help=f"number of seeds: FIRST-SEED .. FIRST-SEED+K-1 (default {DEFAULT_SEEDS})")
    parser.add_argument("--first-seed", type=int, default=None, metavar="S", help="the first seed (default 0)")
    parser.add_argument("--eval-every", type=int, default=None, metavar="N",
                        help="evaluate every N steps (default: a tenth of --steps)")
    parser.add_argument("--eval-episodes", type=int, default=None, metavar="N",
                        help=f"deterministic episodes per evaluation (default {DEFAULT_EVAL_EPISODES})")
    parser.add_argument("--out", default=None, metavar="DIR", help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--backend", choices=("local", "ray"), default=None,
                        help="local: a process pool on this machine (default); ray: Ray tasks")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address (with --backend ray; default: start a local Ray for the run)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="parallel jobs (default: one per CPU; 0 runs jobs one by one in this process)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads per job (default 1)")
    parser.add_argument("--threshold", action="append", default=None, metavar="[ENV=]RETURN",
                        help="return that counts as solved, for all environments or for ENV (repeatable; "
                             "default: Pendulum-v1 -200, else Gymnasium's reward_threshold)")
    parser.add_argument("--agent-kwargs", default=None, metavar="JSON",
                        help='keyword arguments per agent, e.g. \'{"ppo": {"n_steps": 256}}\'')
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="repeat a run from its config.json (command-line options override it)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """``compare`` keyword arguments from the command line, the config file and the defaults."""
    base: dict[str, Any] = {}
    if args.config is not None:
        try:
            base = dict(json.loads(args.config.read_text(encoding="utf-8"))["compare"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InvalidArgumentError(
                "--config", f"cannot read a comparison config from {args.config}: {error}") from None
    agents: Any = base.get("agents", DEFAULT_AGENTS)
    if args.agents is not None:
        names = [name.strip() for name in args.agents.split(",") if name.strip()]
        agents = {name: agents.get(name, {}) for name in names} if isinstance(agents, dict) else names
    if args.agent_kwargs is not None:
        try:
            extra = json.loads(args.agent_kwargs)
        except ValueError as error:
            raise InvalidArgumentError("--agent-kwargs", f"is not JSON: {error}") from None
        if not isinstance(extra, dict) or not all(isinstance(v, dict) for v in extra.values()):
            raise InvalidArgumentError(
                "--agent-kwargs", 'must map agent names to objects, e.g. {"ppo": {"n_steps": 256}}')
        names = [n.strip() for n in agents.split(",")] if isinstance(agents, str) else list(agents)
        unknown = sorted(set(extra) - set(names))
        if unknown:
            raise InvalidArgumentError("--agent-kwargs", f"names agents that are not compared: {', '.join(unknown)}")
        current = agents if isinstance(agents, dict) else {}
        agents = {name: {**current.get(name, {}), **extra.get(name, {})} for name in names}
    envs = base.get("envs", DEFAULT_ENVS)
    if args.env is not None:
        envs = [env.strip() for value in args.env for env in value.split(",") if env.strip()]
    seeds: Any = base.get("seeds", DEFAULT_SEEDS)
    if args.seeds is not None or args.first_seed is not None:
        count = args.seeds if args.seeds is not None else (len(seeds) if isinstance(seeds, list) else seeds)
        if count < 1:
            raise InvalidArgumentError("--seeds", f"must be at least 1, got {count}")
        first = args.first_seed or 0
        if first < 0:
            raise InvalidArgumentError("--first-seed", f"must be non-negative, got {first}")
        seeds = list(range(first, first + count))
    steps = args.steps if args.steps is not None else base.get("total_timesteps", DEFAULT_STEPS)
    eval_every = args.eval_every if args.eval_every is not None else (
        None if args.steps is not None else base.get("eval_every"))
    thresholds = dict(base.get("thresholds", {}))
    for value in args.threshold or []:
        env_part, sep, number = value.rpartition("=")
        try:
            parsed = float(number)
        except ValueError:
            raise InvalidArgumentError("--threshold", f"takes RETURN or ENV=RETURN, got {value!r}") from None
        for env_id in ([env_part] if sep else envs):
            thresholds[env_id] = parsed

    def pick(name: str, key: str, default: Any) -> Any:
        value = getattr(args, name)
        return value if value is not None else base.get(key, default)

    return {
        "envs": envs, "agents": agents, "total_timesteps": steps, "seeds": seeds, "eval_every": eval_every,
        "eval_episodes": pick("eval_episodes", "eval_episodes", DEFAULT_EVAL_EPISODES),
        "out_dir": pick("out", "out_dir", DEFAULT_OUT), "backend": pick("backend", "backend", "local"),
        "address": pick("address", "address", None), "workers": pick("workers", "workers", None),
        "threads_per_job": pick("threads", "threads_per_job", 1), "thresholds": thresholds,
    }


def run_compare(args: argparse.Namespace) -> int:
    """Run ``pcctrl compare``; print the summary table and the paths. 0: done, 1: jobs failed, 2: bad arguments."""
    from .backends import RayStartError
    from .comparison import CompareError, compare
    from .registry import AgentUnavailableError

    try:
        settings = _settings(args)
        result = compare(**settings, progress=not args.no_progress)
    except (ValueError, AgentUnavailableError) as error:
        print(f"pcctrl compare: {error}", file=sys.stderr)
        return 2
    except (CompareError, RayStartError) as error:
        print(f"pcctrl compare: {error}", file=sys.stderr)
        return 1
    print()
    print(result.summary_text)
    print(f"plot:    {result.curves_png}")
    print(f"CSV:     {result.results_csv}")
    print(f"summary: {result.summary_md}")
    print(f"config:  {result.config_json}  (pcctrl compare --config {result.config_json} repeats the run)")
    return 0
