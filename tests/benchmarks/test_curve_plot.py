"""benchmarks/plot_curves.py: seeds from separate JSON files merge, the "held" verdict, the PNG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import plot_curves  # noqa: E402


def _record(agent: str, seed: int, curve: list[tuple[int, float]], *, steps: int = 600, threshold: float = -200.0,
            overrides: dict | None = None) -> dict:
    return {"env": "Pendulum-v1", "agent": agent, "seed": seed, "overrides": overrides or {}, "threshold": threshold,
            "steps": steps, "eval_every": 200, "eval_episodes": 2, "max_episode_steps": 200,
            "points": [{"step": s, "mean": m, "returns": [m - 10.0, m + 10.0], "lengths": [200, 150]}
                       for s, m in curve],
            "complete": bool(curve) and curve[-1][0] >= steps, "wall_s": 1.0}


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps({"format": "pcctrl-curves-1", "command": "python x", "machine": {},
                                "records": records}))
    return path


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    # Agent: seeds in two files; mean -350, -170, -150 -> reaches -200 at 400 and holds (held).
    # SAC: mean -300, -150, -250 -> reaches -200 at 400 and falls back at 600 (not held).
    # Agent with horizon=5: one seed, stops at 400 of 600 (held so far).
    return [
        _write(tmp_path / "a.json", [_record("ActiveInferenceAgent", 0, [(200, -400.0), (400, -150.0), (600, -120.0)]),
                                     _record("SAC", 0, [(200, -300.0), (400, -100.0), (600, -300.0)])]),
        _write(tmp_path / "b.json", [_record("ActiveInferenceAgent", 1, [(200, -300.0), (400, -190.0), (600, -180.0)]),
                                     _record("SAC", 1, [(200, -300.0), (400, -200.0), (600, -200.0)]),
                                     _record("ActiveInferenceAgent", 0, [(200, -250.0), (400, -100.0)],
                                             overrides={"horizon": 5})]),
    ]


def test_merge_mean_and_verdicts(files: list[Path]) -> None:
    groups = {(g.agent, g.label): g for g in plot_curves.merge(plot_curves.load_records(files))}
    agent = groups[("ActiveInferenceAgent", "ActiveInferenceAgent")]
    sac = groups[("SAC", "SAC")]
    short = groups[("ActiveInferenceAgent", "ActiveInferenceAgent horizon=5")]
    assert sorted(agent.seeds) == [0, 1] and sorted(sac.seeds) == [0, 1] and sorted(short.seeds) == [0]
    assert agent.mean_curve() == [(200, -350.0), (400, -170.0), (600, -150.0)]
    assert sac.mean_curve() == [(200, -300.0), (400, -150.0), (600, -250.0)]
    assert (agent.hit(), agent.verdict()) == (400, "held")
    assert (sac.hit(), sac.verdict()) == (400, "not held")
    assert short.verdict() == "held so far (to 400 of 600)"
    # 2 seeds x 3 points x 2 episodes, returns m -+ 10 and lengths 200 (the limit) / 150 (ended
    # early): at or above -200 are both episodes at -150, -120, -190 (-200 counts) and -180.
    assert agent.episodes() == (12, 8, 6)


def test_never_reached_and_mismatched_budget(tmp_path: Path) -> None:
    low = _write(tmp_path / "low.json", [_record("SAC", 0, [(200, -900.0), (400, -800.0), (600, -700.0)])])
    (group,) = plot_curves.merge(plot_curves.load_records([low]))
    assert (group.hit(), group.verdict()) == (None, "not reached")
    other = _write(tmp_path / "other.json", [_record("SAC", 1, [(200, -900.0)], steps=800)])
    with pytest.raises(ValueError, match="threshold/budget"):
        plot_curves.merge(plot_curves.load_records([low, other]))


def test_cli_writes_png_and_summary(files: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "curves" / "pendulum.png"
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plot_curves.py"), *map(str, files),
                           "--out", str(out)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    verdicts = {line.split()[1]: line.rsplit("  ", 1)[-1] for line in done.stdout.splitlines()
                if line.startswith("  Pendulum-v1") and "horizon" not in line}
    assert verdicts == {"ActiveInferenceAgent": "held", "SAC": "not held"}


def test_markdown_table(files: list[Path]) -> None:
    groups = {g.label: g for g in plot_curves.merge(plot_curves.load_records(files))}
    assert plot_curves.markdown_table(groups["ActiveInferenceAgent"]) == [
        "| env steps | 200 | 400 | 600 |", "|---|---|---|---|",
        "| mean of 2 seeds | -350.0 | **-170.0** | -150.0 |",
        "| seed 0 | -400.0 | -150.0 | -120.0 |", "| seed 1 | -300.0 | -190.0 | -180.0 |"]


def test_ratio_against_sac(files: list[Path], tmp_path: Path) -> None:
    groups = plot_curves.merge(plot_curves.load_records(files))
    lines = plot_curves.ratio_lines(groups)
    assert lines[0].startswith("steps-to-threshold ratio")
    assert "  ActiveInferenceAgent / SAC on Pendulum-v1, steps to -200: 400 / 400 = 1.000" in lines
    assert "  ActiveInferenceAgent horizon=5 / SAC on Pendulum-v1, steps to -200: 400 / 400 = 1.000" in lines
    slow = _write(tmp_path / "slow.json", [_record("SAC", 0, [(200, -900.0), (400, -800.0), (600, -700.0)]),
                                           _record("ActiveInferenceAgent", 0, [(200, -150.0), (400, -150.0)],
                                                   steps=400)])
    lines = plot_curves.ratio_lines(plot_curves.merge(plot_curves.load_records([slow])))
    assert lines[1].endswith("< 0.333 (SAC did not reach it in 600 steps)")
