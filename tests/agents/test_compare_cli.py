"""``pcctrl compare`` through its parser: a tiny run, repeating it from config.json, bad arguments, defaults."""

from __future__ import annotations

import argparse
import importlib.util
import json

import pytest

from pcctrl.agents.compare_cli import DEFAULT_STEPS, _settings, add_compare_parser, run_compare

PPO_TINY = '{"ppo": {"n_steps": 64, "batch_size": 32}}'


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pcctrl")
    add_compare_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["compare", *argv])


def test_cli_runs_prints_table_and_paths_and_repeats_from_config(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--env", "Pendulum-v1", "--agents", "ppo", "--agent-kwargs", PPO_TINY, "--steps", "128",
            "--seeds", "2", "--eval-every", "64", "--eval-episodes", "1", "--out", str(out), "--workers", "0",
            "--threshold", "-900", "--no-progress"]
    assert run_compare(_parse(argv)) == 0
    printed = capsys.readouterr().out
    assert "| agent | final return (mean ± 95% CI) | steps to -900 (seeds reaching)" in printed
    assert "| ppo |" in printed
    assert f"plot:    {out / 'curves.png'}" in printed and f"CSV:     {out / 'results.csv'}" in printed
    config = json.loads((out / "config.json").read_text())["compare"]
    assert config["agents"] == {"ppo": {"n_steps": 64, "batch_size": 32}}
    assert config["seeds"] == [0, 1] and config["thresholds"] == {"Pendulum-v1": -900.0}

    again = tmp_path / "again"
    assert run_compare(_parse(["--config", str(out / "config.json"), "--out", str(again), "--no-progress"])) == 0
    first = [line.rsplit(",", 1)[0] for line in (out / "results.csv").read_text().splitlines()]
    second = [line.rsplit(",", 1)[0] for line in (again / "results.csv").read_text().splitlines()]
    assert len(first) == 1 + 2 * 3 and first == second


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0", "--agents", "sac"], "total_timesteps (steps): must be an integer >= 1, got 0"),
    (["--agents", "sac,bogus"], "unknown agent 'bogus'"),
    (["--env", "Nope-v0", "--agents", "sac"], "unknown environment 'Nope-v0'"),
    (["--seeds", "0", "--agents", "sac"], "--seeds: must be at least 1"),
    (["--agents", "sac", "--address", "auto"], "address: is for the ray backend"),
    (["--agents", "sac", "--agent-kwargs", "{bad"], "--agent-kwargs: is not JSON"),
    (["--agents", "sac", "--agent-kwargs", PPO_TINY], "--agent-kwargs: names agents that are not compared: ppo"),
    (["--agents", "sac", "--threshold", "high"], "--threshold: takes RETURN or ENV=RETURN"),
])
def test_cli_bad_arguments_exit_2_before_any_job(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert run_compare(_parse([*argv, "--out", str(out), "--workers", "0", "--no-progress"])) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_defaults_are_the_quick_comparison():
    settings = _settings(_parse([]))
    assert settings["envs"] == ["Pendulum-v1"] and settings["agents"] == "aif,sac"
    assert settings["total_timesteps"] == DEFAULT_STEPS and settings["seeds"] == 2
    assert settings["backend"] == "local" and settings["out_dir"] == "runs/compare"


@pytest.mark.skipif(importlib.util.find_spec("pcctrl.agents.active_inference") is not None,
                    reason="ActiveInferenceAgent is available, so the default run trains for minutes (measured in docs/compare.md)")
def test_cli_default_fails_clearly_while_aif_is_missing(tmp_path, capsys):
    assert run_compare(_parse(["--out", str(tmp_path / "run")])) == 2
    assert "agent 'aif' is not available" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
