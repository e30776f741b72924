"""Comparison results: per-job files, ``results.csv``, and the summary (final return, steps to a
threshold, area under the curve, wall time) as numbers and as a markdown table.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from pcctrl.checkpoint_io import atomic_write_bytes
from pcctrl.errors import CheckpointError

COLUMNS = ("env", "agent", "seed", "step", "eval_return_mean", "eval_return_std", "wall_time")
Row = dict[str, Any]

DEFAULT_THRESHOLDS: dict[str, float] = {
    "Pendulum-v1": -200.0,
    "pcctrl/NoisyPendulum-v0": -200.0,
}

_T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
          10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
          18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
          26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def default_threshold(env_id: str) -> float | None:
    """The return that counts as solved: pcctrl's table, else Gymnasium's ``reward_threshold``."""
    if env_id in DEFAULT_THRESHOLDS:
        return DEFAULT_THRESHOLDS[env_id]
    try:
        threshold = gym.spec(env_id).reward_threshold
    except gym.error.Error:
        return None
    return None if threshold is None else float(threshold)


def t_quantile_975(dof: int) -> float:
    """Student's t 97.5% quantile (two-sided 95% interval) for ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError("a t interval needs at least one degree of freedom (two samples)")
    if dof in _T_975:
        return _T_975[dof]
    known = sorted(_T_975)
    if dof > known[-1]:
        return 1.960
    upper = next(k for k in known if k > dof)
    lower = max(k for k in known if k < dof)
    weight = (1 / lower - 1 / dof) / (1 / lower - 1 / upper)
    return _T_975[lower] + weight * (_T_975[upper] - _T_975[lower])


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% t interval (``nan`` half-width for one value)."""
    data = np.asarray(values, dtype=float)
    if data.size == 1:
        return float(data[0]), math.nan
    half = t_quantile_975(data.size - 1) * data.std(ddof=1) / math.sqrt(data.size)
    return float(data.mean()), float(half)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))


JOB_FILE_FORMAT = "pcctrl.compare-job"
JOB_FILE_VERSION = 2
_ROW_TYPES = {"env": (str,), "agent": (str,), "seed": (int,), "step": (int,), "eval_return_mean": (float, int),
              "eval_return_std": (float, int), "wall_time": (float, int)}


def _job_digest(identity: Any, rows: Any) -> str:
    text = json.dumps({"format": JOB_FILE_FORMAT, "version": JOB_FILE_VERSION, "job": identity, "rows": rows},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_job_file(path: Path, identity: Mapping[str, Any], rows: Sequence[Row]) -> None:
    """Save one finished job (its identity, its rows and their SHA-256) atomically, as JSON."""
    identity, rows = dict(identity), [dict(row) for row in rows]
    atomic_write_text(path, json.dumps({"format": JOB_FILE_FORMAT, "version": JOB_FILE_VERSION, "job": identity,
                                        "rows": rows, "sha256": _job_digest(identity, rows)}, indent=1))


def read_job_file(path: Path) -> tuple[dict[str, Any], list[Row]] | None:
    """A saved job's identity and rows, or ``None`` if there is no such file.

    Any other problem (unreadable, empty, truncated, not JSON, another kind of file, rows of
    the wrong shape, a content hash that does not match) raises
    :class:`~pcctrl.errors.CheckpointError` naming the file: its results are not used, and
    deleting it makes ``compare`` run that job again. Files of pcctrl 0.1 (no hash) are
    checked the same way except for the hash.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(path, f"is not a readable compare job file ({exc}); delete it to rerun the job") from None
    if not text.strip():
        raise CheckpointError(path, "is empty; delete it to rerun the job")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(path, f"is truncated or not JSON ({exc}); delete it to rerun the job") from None
    legacy = isinstance(data, dict) and set(data) == {"job", "rows"}
    if not legacy and not (isinstance(data, dict) and data.get("format") == JOB_FILE_FORMAT):
        raise CheckpointError(path, "is not a compare job file; delete it to rerun the job")
    if not legacy:
        if data.get("version") != JOB_FILE_VERSION or set(data) != {"format", "version", "job", "rows", "sha256"}:
            raise CheckpointError(path, f"is a compare job file of another version ({data.get('version')!r}); "
                                        "delete it to rerun the job")
        if data["sha256"] != _job_digest(data["job"], data["rows"]):
            raise CheckpointError(path, "content hash mismatch: the file was changed or damaged after it was "
                                        "written; delete it to rerun the job")
    identity, rows = data["job"], data["rows"]
    problem = _job_problem(identity, rows)
    if problem:
        raise CheckpointError(path, f"{problem}; delete it to rerun the job")
    return identity, rows


def _job_problem(identity: Any, rows: Any) -> str | None:
    if not isinstance(identity, dict) or not isinstance(rows, list) or not rows:
        return "has no job identity or no rows"
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) != set(COLUMNS):
            return f"row {i} does not have the columns {list(COLUMNS)}"
        for column, types in _ROW_TYPES.items():
            value = row[column]
            if isinstance(value, bool) or not isinstance(value, types):
                return f"row {i}: {column} is {value!r}, not a {types[0].__name__}"
    return None


def write_results_csv(path: Path, rows: Iterable[Row]) -> None:
    """``results.csv`` in long format, one row per evaluation; floats written exactly (``repr``)."""
    lines = [",".join(COLUMNS)]
    for row in rows:
        lines.append(",".join(_csv_field(row[column]) for column in COLUMNS))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _csv_field(value: Any) -> str:
    text = repr(value) if isinstance(value, float) else str(value)
    if any(c in text for c in ',"\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def read_results_csv(path: Path) -> list[Row]:
    """Rows of a ``results.csv`` with numbers parsed."""
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        row["seed"] = int(row["seed"])
        row["step"] = int(row["step"])
        for column in ("eval_return_mean", "eval_return_std", "wall_time"):
            row[column] = float(row[column])
    return rows


def curves(rows: Iterable[Row]) -> dict[tuple[str, str], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """``{(env, agent): {seed: (steps, eval_return_mean)}}``, steps ascending, in first-seen order."""
    grouped: dict[tuple[str, str], dict[int, list[tuple[int, float]]]] = {}
    for row in rows:
        grouped.setdefault((row["env"], row["agent"]), {}).setdefault(row["seed"], []).append(
            (row["step"], row["eval_return_mean"]))
    result = {}
    for key, by_seed in grouped.items():
        result[key] = {}
        for seed, points in by_seed.items():
            points.sort()
            result[key][seed] = (np.array([p[0] for p in points]), np.array([p[1] for p in points], dtype=float))
    return result


@dataclass(frozen=True)
class SummaryRow:
    """One agent on one environment, over its seeds.

    ``auc`` is the area under the evaluation curve divided by the steps it spans: the average
    evaluation return over training (trapezoid rule). ``steps_to_threshold`` is the mean, over the
    ``reached`` seeds that got there, of the first evaluated step whose mean return is at least
    ``threshold``. ``wall_time`` is the mean training wall time in seconds, evaluation excluded.
    """

    env: str
    agent: str
    seeds: int
    final_return: float
    final_return_ci: float
    threshold: float | None
    steps_to_threshold: float | None
    reached: int
    auc: float
    auc_ci: float
    wall_time: float


def summarize(rows: Iterable[Row], thresholds: Mapping[str, float | None] | None = None) -> list[SummaryRow]:
    """Summary numbers per (env, agent), in first-seen order. ``thresholds`` overrides the defaults."""
    rows = list(rows)
    wall: dict[tuple[str, str], dict[int, float]] = {}
    for row in rows:
        per_seed = wall.setdefault((row["env"], row["agent"]), {})
        per_seed[row["seed"]] = max(per_seed.get(row["seed"], 0.0), row["wall_time"])
    summary = []
    for (env, agent), by_seed in curves(rows).items():
        threshold = (thresholds or {}).get(env, default_threshold(env))
        finals, areas, first_steps = [], [], []
        for steps, returns in by_seed.values():
            finals.append(returns[-1])
            span = steps[-1] - steps[0]
            areas.append(_trapezoid(returns, steps) / span if span > 0 else float(returns[-1]))
            if threshold is not None:
                hits = np.nonzero(returns >= threshold)[0]
                if hits.size:
                    first_steps.append(int(steps[hits[0]]))
        final, final_ci = mean_ci(finals)
        auc, auc_ci = mean_ci(areas)
        summary.append(SummaryRow(
            env=env, agent=agent, seeds=len(by_seed), final_return=final, final_return_ci=final_ci,
            threshold=threshold, steps_to_threshold=float(np.mean(first_steps)) if first_steps else None,
            reached=len(first_steps), auc=auc, auc_ci=auc_ci,
            wall_time=float(np.mean(list(wall[(env, agent)].values()))),
        ))
    return summary


def _trapezoid(values: np.ndarray, steps: np.ndarray) -> float:
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(steps)))


def _with_ci(value: float, half: float) -> str:
    return f"{value:.1f}" if math.isnan(half) else f"{value:.1f} ± {half:.1f}"


def summary_markdown(summary: Sequence[SummaryRow], total_timesteps: int | None = None) -> str:
    """The summary as markdown: one table per environment."""
    parts = []
    for env in dict.fromkeys(row.env for row in summary):
        env_rows = [row for row in summary if row.env == env]
        threshold = env_rows[0].threshold
        budget = f", {total_timesteps:,} steps" if total_timesteps else ""
        target = "no threshold" if threshold is None else f"threshold {threshold:g}"
        parts.append(f"### {env} ({target}{budget}, {env_rows[0].seeds} seeds)\n")
        steps_header = "steps to threshold" if threshold is None else f"steps to {threshold:g}"
        parts.append(f"| agent | final return (mean ± 95% CI) | {steps_header} (seeds reaching) "
                     "| AUC: mean return over training | train wall time (s) |")
        parts.append("|---|---|---|---|---|")
        for row in env_rows:
            if row.threshold is None:
                steps = "n/a"
            elif row.steps_to_threshold is None:
                steps = f"not reached (0/{row.seeds})"
            else:
                steps = f"{row.steps_to_threshold:,.0f} ({row.reached}/{row.seeds})"
            parts.append(f"| {row.agent} | {_with_ci(row.final_return, row.final_return_ci)} | {steps} "
                         f"| {_with_ci(row.auc, row.auc_ci)} | {row.wall_time:.1f} |")
        parts.append("")
    return "\n".join(parts)
