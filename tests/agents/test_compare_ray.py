"""The Ray backend gives the same results as the local one for the same seeds."""

from __future__ import annotations

import csv
from typing import Any

import pytest

from pcctrl.agents.backends import RayStartError
from pcctrl.agents import compare
from pcctrl.agents.registry import register_agent, unregister_agent
from pcctrl.agents.results import COLUMNS

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'pcctrl[ray]')")


def small_td3(env: Any, seed: int, **kwargs: Any) -> Any:
    """A user-registered factory: SB3's TD3 with a short warm-up, built on the given env and seed."""
    from stable_baselines3 import TD3

    return TD3("MlpPolicy", env, seed=seed, learning_starts=50, device="cpu", **kwargs)


def _rows(path) -> list[tuple]:
    with open(path, newline="") as stream:
        return [tuple(row[c] for c in COLUMNS if c != "wall_time") for row in csv.DictReader(stream)]


def test_ray_backend_matches_local(tmp_path):
    register_agent("small-td3", small_td3, callback=True)
    try:
        arguments = dict(envs="Pendulum-v1", agents={"small-td3": {}, "ppo": {"n_steps": 64, "batch_size": 32}},
                         total_timesteps=150, seeds=2, eval_every=75, eval_episodes=1, progress=False)
        local = compare(**arguments, out_dir=tmp_path / "local", workers=0)
        try:
            remote = compare(**arguments, out_dir=tmp_path / "ray", backend="ray", workers=2)
        except RayStartError as error:
            pytest.skip(f"Ray cannot start here: {error}")
    finally:
        unregister_agent("small-td3")
    assert ray.is_initialized() is False
    assert len(_rows(local.results_csv)) == 2 * 2 * 3
    assert _rows(remote.results_csv) == _rows(local.results_csv)
