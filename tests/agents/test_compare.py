"""compare(): outputs, summary numbers against the CSV, resume, user-registered agents, bad arguments."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pcctrl.agents.comparison import CompareError, compare
from pcctrl.agents.registry import (
    AgentUnavailableError,
    UnknownAgentError,
    get_agent,
    register_agent,
    unregister_agent,
)
from pcctrl.agents.results import COLUMNS, mean_ci, summarize

PPO_TINY = {"n_steps": 64, "batch_size": 32}


class LinearAgent:
    """A fixed linear policy, seeded; ``learn`` explores with seeded random actions and learns nothing.

    It has the SB3 shape (``learn``, ``predict``) but is not an SB3 algorithm: ``compare`` calls its
    ``learn`` in chunks, unless it is registered with ``callback=True``, in which case it calls
    ``callback.on_step()`` after every step and stops when that returns ``False``.
    """

    builds = 0
    fail_on_seed: int | None = None

    def __init__(self, env: Any, seed: int = 0, gain: float = 1.0) -> None:
        type(self).builds += 1
        self.env = env
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.weights = gain * rng.standard_normal((env.action_space.shape[0], env.observation_space.shape[0]))
        self.explore = np.random.default_rng(seed + 1)
        self.obs = None

    def learn(self, total_timesteps: int, callback: Any = None, progress_bar: bool = False) -> "LinearAgent":
        if self.fail_on_seed == self.seed:
            raise RuntimeError(f"interrupted on seed {self.seed}")
        if self.obs is None:
            self.obs, _ = self.env.reset()
        low, high = self.env.action_space.low, self.env.action_space.high
        for _ in range(total_timesteps):
            action = self.explore.uniform(low, high).astype(np.float32)
            self.obs, _, terminated, truncated, _ = self.env.step(action)
            if terminated or truncated:
                self.obs, _ = self.env.reset()
            if callback is not None and not callback.on_step():
                break
        return self

    def predict(self, obs: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        space = self.env.action_space
        action = np.clip(np.asarray(obs, dtype=np.float64) @ self.weights.T, space.low, space.high)
        return action.astype(np.float32), state


@pytest.fixture
def linear_agent():
    """Register ``LinearAgent`` as "linear" (chunked learn) and "linear-cb" (SB3 callback) for one test."""
    register_agent("linear", LinearAgent)
    register_agent("linear-cb", LinearAgent, callback=True)
    LinearAgent.builds = 0
    LinearAgent.fail_on_seed = None
    yield
    unregister_agent("linear")
    unregister_agent("linear-cb")
    LinearAgent.fail_on_seed = None


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def _without_wall_time(rows: list[dict[str, str]]) -> list[tuple]:
    return [tuple(row[c] for c in COLUMNS if c != "wall_time") for row in rows]


def _summary_cells(text: str) -> dict[str, list[str]]:
    cells = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if line.startswith("| ") and not line.startswith("| agent") and len(parts) == 5:
            cells[parts[0]] = parts[1:]
    return cells


def _number(cell: str) -> float:
    return float(cell.split("±")[0].split("(")[0].replace(",", ""))


def test_tiny_comparison_writes_csv_plot_summary_and_config(tmp_path, linear_agent):
    out = tmp_path / "run"
    result = compare("Pendulum-v1", {"linear": {"gain": 0.5}, "ppo": PPO_TINY}, total_timesteps=200, seeds=2,
                     eval_every=100, eval_episodes=1, out_dir=out, workers=2, thresholds={"Pendulum-v1": -900.0},
                     progress=False)

    rows = _read_csv(out / "results.csv")
    assert tuple(_read_csv_header(out / "results.csv")) == COLUMNS
    assert [(r["agent"], r["seed"], r["step"]) for r in rows] == [
        (agent, str(seed), str(step)) for agent in ("linear", "ppo") for seed in (0, 1) for step in (0, 100, 200)]
    assert all(r["env"] == "Pendulum-v1" for r in rows)
    returns = np.array([float(r["eval_return_mean"]) for r in rows])
    assert np.all(np.isfinite(returns)) and np.all(returns <= 0) and np.all(returns >= -200 * 16.3)
    assert all(float(r["eval_return_std"]) == 0.0 for r in rows)
    linear = [r for r in rows if r["agent"] == "linear"]
    assert len({r["eval_return_mean"] for r in linear if r["seed"] == "0"}) == 1

    png = (out / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000

    text = (out / "summary.md").read_text()
    cells = _summary_cells(text)
    assert set(cells) == {"linear", "ppo"}
    for agent in ("linear", "ppo"):
        by_seed = {s: [r for r in rows if r["agent"] == agent and r["seed"] == s] for s in ("0", "1")}
        finals = [float(seed_rows[-1]["eval_return_mean"]) for seed_rows in by_seed.values()]
        areas = []
        first_hits = []
        for seed_rows in by_seed.values():
            steps = np.array([int(r["step"]) for r in seed_rows], dtype=float)
            values = np.array([float(r["eval_return_mean"]) for r in seed_rows])
            areas.append(np.sum((values[1:] + values[:-1]) / 2 * np.diff(steps)) / (steps[-1] - steps[0]))
            hits = [s for s, v in zip(steps, values) if v >= -900.0]
            if hits:
                first_hits.append(hits[0])
        final_cell, steps_cell, auc_cell, wall_cell = cells[agent]
        assert _number(final_cell) == pytest.approx(np.mean(finals), abs=0.051)
        half = 12.706 * np.std(finals, ddof=1) / math.sqrt(2)
        assert float(final_cell.split("±")[1]) == pytest.approx(half, abs=0.051)
        assert _number(auc_cell) == pytest.approx(np.mean(areas), abs=0.051)
        if first_hits:
            assert _number(steps_cell) == pytest.approx(np.mean(first_hits), abs=0.51)
            assert f"({len(first_hits)}/2)" in steps_cell
        else:
            assert steps_cell == "not reached (0/2)"
        walls = [max(float(r["wall_time"]) for r in seed_rows) for seed_rows in by_seed.values()]
        assert _number(wall_cell) == pytest.approx(np.mean(walls), abs=0.051)
    assert {row.agent for row in result.summary} == {"linear", "ppo"}

    config = json.loads((out / "config.json").read_text())
    assert config["compare"]["agents"] == {"linear": {"gain": 0.5}, "ppo": PPO_TINY}
    assert config["agent_targets"]["linear"].endswith("LinearAgent")
    again = dict(config["compare"], out_dir=str(tmp_path / "again"), workers=0)
    compare(**again, progress=False)
    assert _without_wall_time(_read_csv(tmp_path / "again" / "results.csv")) == _without_wall_time(rows)


def _read_csv_header(path: Path) -> list[str]:
    with open(path, newline="") as stream:
        return next(csv.reader(stream))


def test_callback_and_chunked_learning_give_the_same_evaluations(tmp_path, linear_agent):
    chunked = compare("Pendulum-v1", ["linear"], 250, seeds=[3], eval_every=100, eval_episodes=1,
                      out_dir=tmp_path / "a", workers=0, progress=False)
    callback = compare("Pendulum-v1", ["linear-cb"], 250, seeds=[3], eval_every=100, eval_episodes=1,
                       out_dir=tmp_path / "b", workers=0, progress=False)
    a = [(r[3], r[4]) for r in _without_wall_time(_read_csv(chunked.results_csv))]
    b = [(r[3], r[4]) for r in _without_wall_time(_read_csv(callback.results_csv))]
    assert [step for step, _ in a] == ["0", "100", "200", "250"]
    assert a == b


def test_resume_skips_finished_jobs_and_reruns_changed_ones(tmp_path, linear_agent):
    out = tmp_path / "run"
    kwargs = dict(envs="Pendulum-v1", agents=["linear"], total_timesteps=100, eval_every=50, eval_episodes=1,
                  out_dir=out, workers=0, progress=False, check_agents=False)
    LinearAgent.fail_on_seed = 1
    with pytest.raises(CompareError, match="(?s)1 of 2 jobs failed.*interrupted on seed 1"):
        compare(seeds=2, **kwargs)
    saved = out / "jobs" / "Pendulum-v1__linear__seed0.json"
    assert saved.exists() and not (out / "jobs" / "Pendulum-v1__linear__seed1.json").exists()
    assert not (out / "results.csv").exists()
    before = saved.read_bytes(), saved.stat().st_mtime_ns

    LinearAgent.fail_on_seed = None
    LinearAgent.builds = 0
    result = compare(seeds=2, **kwargs)
    assert result.skipped == [("Pendulum-v1", "linear", 0)]
    assert result.ran == [("Pendulum-v1", "linear", 1)]
    assert LinearAgent.builds == 1
    assert (saved.read_bytes(), saved.stat().st_mtime_ns) == before
    assert [r["seed"] for r in _read_csv(out / "results.csv")] == ["0"] * 3 + ["1"] * 3

    LinearAgent.builds = 0
    assert compare(seeds=2, **kwargs).ran == []
    assert LinearAgent.builds == 0
    changed = compare(seeds=2, **{**kwargs, "eval_episodes": 2})
    assert changed.skipped == [] and len(changed.ran) == 2


@pytest.mark.parametrize("change, message", [
    ({"envs": "NoSuchEnv-v0"}, "unknown environment 'NoSuchEnv-v0'"),
    ({"envs": "Pendulum-v9"}, "unknown environment 'Pendulum-v9'"),
    ({"agents": ["linear", "nosuchagent"]}, "unknown agent 'nosuchagent'; registered agents: .*sac"),
    ({"total_timesteps": 0}, r"total_timesteps \(steps\): must be an integer >= 1, got 0"),
    ({"total_timesteps": 10.5}, "must be an integer"),
    ({"seeds": 0}, "seeds: must be an integer >= 1, got 0"),
    ({"seeds": []}, "non-empty list of seeds"),
    ({"seeds": [1, 1]}, "seeds: lists a seed twice"),
    ({"eval_every": 0}, "eval_every: must be an integer >= 1"),
    ({"eval_episodes": 0}, "eval_episodes: must be an integer >= 1"),
    ({"backend": "slurm"}, "unknown backend 'slurm'"),
    ({"address": "auto"}, "address: is for the ray backend"),
    ({"thresholds": {"CartPole-v1": 100}}, "not among the environments"),
    ({"agents": {"linear": {"no_such_option": 1}}}, "agent 'linear' cannot be built on 'Pendulum-v1'"),
    ({"agents": {"linear": {"gain": object()}}}, "keyword arguments must be JSON data"),
    ({"envs": "CartPole-v1", "agents": ["sac"]}, "agent 'sac' cannot be built on 'CartPole-v1'"),
])
def test_bad_arguments_fail_before_any_job_starts(tmp_path, linear_agent, change, message):
    out = tmp_path / "run"
    arguments = dict(envs="Pendulum-v1", agents=["linear"], total_timesteps=100, seeds=1, eval_every=50,
                     eval_episodes=1, out_dir=out, workers=0, progress=False)
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        compare(**arguments)
    assert not out.exists()
    assert LinearAgent.builds == 0


def test_an_agent_that_cannot_be_imported_fails_before_any_job(tmp_path):
    register_agent("ghost", "pcctrl_no_such_module:Agent")
    try:
        with pytest.raises(AgentUnavailableError, match="agent 'ghost' is not available: cannot import"):
            compare("Pendulum-v1", ["ghost", "sac"], 100, seeds=1, out_dir=tmp_path / "run", workers=0)
        assert not (tmp_path / "run").exists()
    finally:
        unregister_agent("ghost")


def test_registry_names_and_lazy_aif():
    assert get_agent("sac").uses_callback() and get_agent("ppo").uses_callback()
    assert get_agent("aif").target == "pcctrl.agents.active_inference:ActiveInferenceAgent"
    with pytest.raises(UnknownAgentError, match="unknown agent 'nope'"):
        get_agent("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_agent("sac", LinearAgent)
    with pytest.raises(ValueError, match="module:attribute"):
        register_agent("bad", "no_colon_here")
    code = ("import sys, pcctrl.agents.comparison, pcctrl.agents.compare_cli; "
            "print('pcctrl.agents.active_inference' in sys.modules)")
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "False"


def test_summary_statistics_on_known_curves():
    rows = []
    for seed, curve in ((0, [-1000.0, -500.0, -100.0]), (1, [-1000.0, -300.0, -300.0]), (2, [-900.0, -150.0, -50.0])):
        for step, value in zip((0, 100, 200), curve):
            rows.append({"env": "Pendulum-v1", "agent": "x", "seed": seed, "step": step,
                         "eval_return_mean": value, "eval_return_std": 0.0, "wall_time": step / 100})
    (row,) = summarize(rows)
    assert row.threshold == -200.0
    assert row.final_return == pytest.approx(-150.0)
    assert row.final_return_ci == pytest.approx(4.303 * np.std([-100, -300, -50], ddof=1) / math.sqrt(3))
    assert row.steps_to_threshold == pytest.approx(150.0) and row.reached == 2
    assert row.auc == pytest.approx(np.mean([-525.0, -475.0, -312.5]))
    assert row.wall_time == pytest.approx(2.0)
    assert mean_ci([5.0]) == (5.0, pytest.approx(float("nan"), nan_ok=True))
    (custom,) = summarize(rows, {"Pendulum-v1": -40.0})
    assert custom.steps_to_threshold is None and custom.reached == 0
