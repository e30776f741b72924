"""``compare``: agents against each other on the same environments, seeds and step budgets.

One job per (env, agent, seed); each finished job is saved atomically under ``out_dir/jobs``, so an
interrupted run resumes from the jobs it finished. When all jobs are done their rows are merged
into ``results.csv``, ``summary.md`` and ``curves.png``; ``config.json`` (written before any job
runs) holds the arguments that reproduce the run.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from pcctrl.errors import CheckpointError, InvalidArgumentError

from .backends import make_backend
from .compare_job import Job, Row
from .env_factory import make_env
from .plots import plot_curves
from .registry import AgentSpec, get_agent
from .results import (
    SummaryRow,
    atomic_write_text,
    read_job_file,
    summarize,
    summary_markdown,
    write_job_file,
    write_results_csv,
)

BACKENDS = ("local", "ray")


class CompareError(RuntimeError):
    """Some jobs of a comparison failed; the finished ones are saved and a rerun resumes."""


@dataclass(frozen=True)
class CompareResult:
    """What a comparison produced."""

    out_dir: Path
    results_csv: Path
    curves_png: Path
    summary_md: Path
    config_json: Path
    summary: list[SummaryRow]
    summary_text: str
    ran: list[tuple[str, str, int]]
    skipped: list[tuple[str, str, int]]


def compare(
    envs: str | Sequence[str],
    agents: str | Sequence[str] | Mapping[str, Mapping[str, Any] | None],
    total_timesteps: int,
    *,
    seeds: int | Sequence[int] = 2,
    eval_every: int | None = None,
    eval_episodes: int = 5,
    out_dir: str | os.PathLike[str] = "runs/compare",
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
    threads_per_job: int = 1,
    thresholds: Mapping[str, float] | None = None,
    check_agents: bool = True,
    progress: bool = True,
) -> CompareResult:
    """Train and evaluate every agent on every environment with every seed, then report.

    ``envs``: Gymnasium ids (``pcctrl/`` ids included). ``agents``: registered names (see
    :func:`pcctrl.agents.registry.register_agent`), or a mapping name → keyword arguments for the
    agent. ``seeds``: a count ``K`` (seeds ``0..K-1``) or the seeds. ``eval_every`` defaults to a
    tenth of the budget; evaluation runs ``eval_episodes`` deterministic episodes on a separate
    environment. ``backend``: ``"local"`` (a pool of ``workers`` processes, default one per CPU
    up to the number of jobs; ``workers=0`` runs jobs in this process) or ``"ray"`` (``address``
    of a cluster, else a local Ray with ``workers`` CPUs). ``thresholds``: env id → the return
    counted as solved, overriding the defaults. ``check_agents`` builds every agent on every
    environment once before any job starts, so incompatible agents and bad keyword arguments fail
    early. All arguments are checked before any job starts; ``ValueError`` says what is wrong.
    """
    settings = _validated(envs, agents, total_timesteps, seeds, eval_every, eval_episodes, out_dir,
                          backend, address, workers, threads_per_job, thresholds)
    specs = {name: get_agent(name) for name in settings["agents"]}
    if check_agents:
        _check_agents_build(settings["envs"], settings["agents"], specs, settings["seeds"][0])
    out = Path(settings["out_dir"])
    jobs = [
        Job(env_id, name, seed, settings["total_timesteps"], settings["eval_every"], settings["eval_episodes"],
            dict(settings["agents"][name]), specs[name].describe())
        for env_id in settings["envs"] for name in settings["agents"] for seed in settings["seeds"]
    ]
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "config.json"
    atomic_write_text(config_path, json.dumps(_config(settings, specs), indent=2) + "\n")

    results: dict[int, list[Row]] = {}
    pending: list[int] = []
    for index, job in enumerate(jobs):
        path = _job_path(out, job)
        saved = read_job_file(path)
        if saved is not None and saved[0] == job.identity():
            _check_saved_rows(path, job, saved[1])
            results[index] = saved[1]
        else:
            pending.append(index)
    if results and progress:
        print(f"resuming: {len(results)} of {len(jobs)} jobs already finished in {out / 'jobs'}")
    failures = _run_pending(jobs, pending, specs, settings, out, results, progress)
    if failures:
        raise CompareError(
            f"{len(failures)} of {len(jobs)} jobs failed; the {len(results)} finished jobs are saved in "
            f"{out / 'jobs'} and running the same comparison again resumes from them:\n" + "\n".join(failures)
        )

    rows = [row for index in range(len(jobs)) for row in results[index]]
    csv_path = out / "results.csv"
    write_results_csv(csv_path, rows)
    summary = summarize(rows, settings["thresholds"])
    text = summary_markdown(summary, settings["total_timesteps"])
    summary_path = out / "summary.md"
    atomic_write_text(summary_path, _summary_page(text, settings))
    plot_path = plot_curves(rows, out / "curves.png", settings["thresholds"])
    key = [(jobs[i].env_id, jobs[i].agent, jobs[i].seed) for i in range(len(jobs))]
    return CompareResult(out, csv_path, plot_path, summary_path, config_path, summary, text,
                         ran=[key[i] for i in pending], skipped=[key[i] for i in range(len(jobs)) if i not in pending])


def _check_saved_rows(path: Path, job: Job, rows: list[Row]) -> None:
    """Refuse a job file whose rows are not this job's (another env, agent, seed or evaluation steps)."""
    steps = [row["step"] for row in rows]
    if steps != job.eval_steps() or any((row["env"], row["agent"], row["seed"]) != (job.env_id, job.agent, job.seed)
                                        for row in rows):
        raise CheckpointError(path, f"holds rows that are not those of job {job.label()!r} (steps {steps[:5]}...); "
                                    "delete it to rerun the job")


def _job_path(out: Path, job: Job) -> Path:
    return out / "jobs" / f"{job.file_stem()}.json"


def _run_pending(jobs: list[Job], pending: list[int], specs: Mapping[str, AgentSpec], settings: dict[str, Any],
                 out: Path, results: dict[int, list[Row]], progress: bool) -> list[str]:
    """Run the pending jobs with one progress bar each; save each finished job; return failure messages."""
    if not pending:
        return []
    tasks = [(jobs[i], specs[jobs[i].agent]) for i in pending]
    width = max(len(job.label()) for job in jobs)
    bars = [tqdm(total=jobs[i].total_timesteps, desc=jobs[i].label().ljust(width), unit="step", position=slot,
                 leave=True, disable=not progress, dynamic_ncols=True) for slot, i in enumerate(pending)]
    failures: list[str] = []

    started: set[int] = set()

    def on_progress(slot: int, steps: int) -> None:
        if slot not in started:
            started.add(slot)
            bars[slot].reset(total=jobs[pending[slot]].total_timesteps)
        bars[slot].update(max(0, steps - bars[slot].n))

    def on_done(slot: int, outcome: list[Row] | BaseException) -> None:
        job = jobs[pending[slot]]
        if isinstance(outcome, BaseException):
            failures.append(f"  {job.label()}: {type(outcome).__name__}: {outcome}")
            bars[slot].set_postfix_str("failed")
        else:
            write_job_file(_job_path(out, job), job.identity(), outcome)
            results[pending[slot]] = outcome
            on_progress(slot, job.total_timesteps)
        bars[slot].refresh()

    workers = settings["workers"]
    if workers is None:
        workers = max(1, min(len(tasks), (os.cpu_count() or 1) // settings["threads_per_job"]))
    try:
        make_backend(settings["backend"], workers, settings["threads_per_job"], settings["address"]).run(
            tasks, on_progress, on_done)
    finally:
        for bar in bars:
            bar.close()
    return failures


def _validated(envs: Any, agents: Any, total_timesteps: Any, seeds: Any, eval_every: Any, eval_episodes: Any,
               out_dir: Any, backend: Any, address: Any, workers: Any, threads_per_job: Any,
               thresholds: Any) -> dict[str, Any]:
    """Normalized settings; ``ValueError`` with a clear message for anything wrong."""
    env_ids = [envs] if isinstance(envs, str) else list(envs)
    if not env_ids:
        raise InvalidArgumentError("envs", "no environments given")
    if len(set(env_ids)) != len(env_ids):
        raise InvalidArgumentError("envs", f"lists an environment twice: {env_ids}")
    for env_id in env_ids:
        _check_env_id(env_id)

    if isinstance(agents, str):
        agents = [name.strip() for name in agents.split(",")]
    if isinstance(agents, Mapping):
        agent_kwargs = {name: dict(kwargs or {}) for name, kwargs in agents.items()}
    else:
        names = list(agents)
        if len(set(names)) != len(names):
            raise InvalidArgumentError("agents", f"lists an agent twice: {names}")
        agent_kwargs = {name: {} for name in names}
    if not agent_kwargs:
        raise InvalidArgumentError("agents", "no agents given")
    for name, kwargs in agent_kwargs.items():
        get_agent(name).resolve()
        try:
            json.dumps(kwargs)
        except TypeError as error:
            raise InvalidArgumentError(
                "agents", f"agent '{name}': keyword arguments must be JSON data (for config.json): {error}") from None

    _require_int("total_timesteps (steps)", total_timesteps, minimum=1)
    if eval_every is None:
        eval_every = max(1, total_timesteps // 10)
    _require_int("eval_every", eval_every, minimum=1)
    _require_int("eval_episodes", eval_episodes, minimum=1)
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        _require_int("seeds", seeds, minimum=1)
        seed_list = list(range(int(seeds)))
    else:
        seed_list = list(seeds)
        if not seed_list:
            raise InvalidArgumentError("seeds", "must be a count >= 1 or a non-empty list of seeds")
        for seed in seed_list:
            _require_int("each seed", seed, minimum=0)
        if len(set(seed_list)) != len(seed_list):
            raise InvalidArgumentError("seeds", f"lists a seed twice: {seed_list}")
        seed_list = [int(seed) for seed in seed_list]

    if backend not in BACKENDS:
        raise InvalidArgumentError("backend", f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise InvalidArgumentError("address", "is for the ray backend; pass backend='ray' (--backend ray) with it")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise InvalidArgumentError("backend", "the ray backend needs Ray: pip install 'pcctrl[ray]'") from None
    if workers is not None:
        _require_int("workers", workers, minimum=0)
    _require_int("threads_per_job", threads_per_job, minimum=1)
    threshold_map = dict(thresholds or {})
    for env_id, value in threshold_map.items():
        if env_id not in env_ids:
            raise InvalidArgumentError(
                "thresholds", f"threshold given for '{env_id}', which is not among the environments {env_ids}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
            raise InvalidArgumentError("thresholds", f"threshold for '{env_id}' must be a finite number, got {value!r}")
    return {
        "envs": env_ids, "agents": agent_kwargs, "total_timesteps": int(total_timesteps), "seeds": seed_list,
        "eval_every": int(eval_every), "eval_episodes": int(eval_episodes), "out_dir": str(out_dir),
        "backend": backend, "address": address, "workers": workers, "threads_per_job": int(threads_per_job),
        "thresholds": {env_id: float(value) for env_id, value in threshold_map.items()},
    }


def _require_int(what: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgumentError(what, f"must be an integer >= {minimum}, got {value!r}")


def _check_env_id(env_id: Any) -> None:
    if not isinstance(env_id, str) or not env_id:
        raise InvalidArgumentError("envs", f"environment ids are strings, got {env_id!r}")
    if env_id.startswith("pcctrl/"):
        import pcctrl.envs  # noqa: F401
    try:
        gym.spec(env_id)
    except gym.error.Error as error:
        raise InvalidArgumentError("envs", f"unknown environment '{env_id}': {error}") from None


def _check_agents_build(env_ids: Iterable[str], agents: Mapping[str, Mapping[str, Any]],
                        specs: Mapping[str, AgentSpec], seed: int) -> None:
    """Build every agent on every environment once, leaving this process's random state as it was."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        for env_id in env_ids:
            for name, kwargs in agents.items():
                env = make_env(env_id)
                try:
                    specs[name].build(env, seed, **kwargs)
                except Exception as error:  # noqa: BLE001 — any failure here is a bad argument
                    raise InvalidArgumentError("agents", f"agent '{name}' cannot be built on '{env_id}': "
                                     f"{type(error).__name__}: {error}") from error
                finally:
                    env.close()
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("pcctrl", "torch", "stable-baselines3", "gymnasium", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _config(settings: dict[str, Any], specs: Mapping[str, AgentSpec]) -> dict[str, Any]:
    return {
        "compare": settings,
        "agent_targets": {name: spec.describe() for name, spec in specs.items()},
        "reproduce": "pcctrl compare --config <this file>  (Python: compare(**json.load(f)['compare']))",
        "versions": _versions(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }


def _summary_page(text: str, settings: dict[str, Any]) -> str:
    agents = ", ".join(settings["agents"])
    return (f"# Comparison: {agents}\n\n"
            f"Budget {settings['total_timesteps']:,} environment steps per job, seeds {settings['seeds']}, "
            f"evaluation every {settings['eval_every']:,} steps over {settings['eval_episodes']} deterministic "
            f"episodes on a separate environment; backend {settings['backend']}.\n\n{text}")
