"""Every example runs (quickly), and the `pcctrl demo` command does what the README says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pcctrl.cli import main

ROOT = Path(__file__).resolve().parents[1]

# Each example with arguments that keep it short; examples/pcgraph_digits.py is run by
# tests/core/test_pcgraph_digits.py through its functions.
QUICK_ARGS: dict[str, list[str]] = {
    "env_tour.py": [],
    "filter_pendulum.py": ["--out", "{tmp}/filter_pendulum.png"],
    "pcgraph_digits.py": None,  # type: ignore[dict-item]
    "realtime_loop.py": ["--seconds", "0.5"],
    "memory_recall.py": ["--count", "10", "--epochs", "100", "--out", "{tmp}/memory_recall.png"],
    "zenoh_arm.py": ["--seconds", "1"],
    "pendulum_aif.py": ["--steps", "60", "--eval-every", "30", "--eval-episodes", "1", "--out", "{tmp}/pendulum_aif.png"],
}


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in (ROOT / "examples").glob("*.py")) == sorted(QUICK_ARGS)


@pytest.mark.parametrize("name", [n for n, a in QUICK_ARGS.items() if a is not None])
def test_example_runs(name: str, tmp_path: Path) -> None:
    if name == "zenoh_arm.py":
        pytest.importorskip("zenoh", reason="needs the [ros] extra: pip install 'pcctrl[ros]'")
    args = [a.format(tmp=tmp_path) for a in QUICK_ARGS[name]]
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
    for arg in args:
        if arg.endswith(".png"):
            assert Path(arg).stat().st_size > 10_000


def test_demo_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--epochs", "3", "--threads", "0", "--out", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| ")}
    assert rows["backprop"].split("|")[2] == rows["pc exact"].split("|")[2]  # Z-IL trains exactly as BP
    assert float(rows["pc filter (laplace)"].split("|")[2]) < float(rows["raw readings"].split("|")[2])
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_demo_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--epochs", "0"]) == 2
    assert "--epochs must be positive" in capsys.readouterr().err
