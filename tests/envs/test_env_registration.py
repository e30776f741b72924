"""Registered pcctrl envs: API checkers, seeding, spaces, ground truth and offscreen rendering."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import pcctrl.envs as penvs

IDS = list(penvs.ENV_IDS)
MUJOCO_IDS = ["pcctrl/ArmReach-v0", "pcctrl/PartialInvertedPendulum-v0"]
EXPECTED = {  # id -> (obs shape, action shape, max_episode_steps, state size)
    "pcctrl/NoisyPendulum-v0": ((2,), (1,), 200, 2),
    "pcctrl/LinearTracking-v0": ((4,), (2,), 200, 4),
    "pcctrl/ArmReach-v0": ((4,), (2,), 200, 4),
    "pcctrl/PartialInvertedPendulum-v0": ((2,), (1,), 1000, 4),
}


def rollout(env: gym.Env, seed: int, steps: int) -> list[tuple]:
    """Reset with ``seed``, step with seeded random actions, record everything."""
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [(obs.copy(), 0.0, False, info["state"].copy())]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((obs.copy(), float(reward), terminated, info["state"].copy()))
        if terminated or truncated:
            obs, info = env.reset()
    return out


def test_all_ids_registered_on_import() -> None:
    assert set(IDS) == set(EXPECTED)
    for env_id in IDS:
        assert env_id in gym.registry


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite-bound and action-range advice only
        gym_check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_sb3_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sb3_check_env(env)
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_limits_and_state_info(env_id: str) -> None:
    obs_shape, act_shape, max_steps, state_size = EXPECTED[env_id]
    env = gym.make(env_id)
    assert env.observation_space.shape == obs_shape
    assert env.action_space.shape == act_shape
    assert env.spec.max_episode_steps == max_steps
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["state"].shape == (state_size,) and info["state"].dtype == np.float64
    obs, _, _, _, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    assert info["state"].shape == (state_size,)
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectory(env_id: str) -> None:
    a = rollout(gym.make(env_id), seed=11, steps=120)
    b = rollout(gym.make(env_id), seed=11, steps=120)
    c = rollout(gym.make(env_id), seed=12, steps=120)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1] == y[1] and x[2] == y[2]
        np.testing.assert_array_equal(x[3], y[3])
    assert not np.array_equal(a[5][0], c[5][0])


def test_observation_mode_angle_for_noisy_pendulum() -> None:
    env = gym.make("pcctrl/NoisyPendulum-v0", observation_mode="angle", obs_noise_std=0.0)
    obs, info = env.reset(seed=3)
    assert obs.shape == (1,)
    theta = info["state"][0]
    assert obs[0] == pytest.approx(np.arctan2(np.sin(theta), np.cos(theta)), abs=1e-6)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "name"),
    [
        ("pcctrl/NoisyPendulum-v0", {"obs_noise_std": -0.1}, "obs_noise_std"),
        ("pcctrl/NoisyPendulum-v0", {"observation_mode": "velocity"}, "observation_mode"),
        ("pcctrl/LinearTracking-v0", {"accel_noise_psd": -1.0}, "accel_noise_psd"),
        ("pcctrl/LinearTracking-v0", {"dt": 0.0}, "dt"),
        ("pcctrl/LinearTracking-v0", {"reference": "square"}, "reference"),
        ("pcctrl/ArmReach-v0", {"obs_noise_std": float("nan")}, "obs_noise_std"),
        ("pcctrl/ArmReach-v0", {"target_radius_range": (0.2, 0.9)}, "target_radius_range"),
        ("pcctrl/PartialInvertedPendulum-v0", {"obs_noise_std": (0.1, -0.1)}, "obs_noise_std"),
    ],
)
def test_invalid_kwargs_raise(env_id: str, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        gym.make(env_id, **kwargs)


RENDER_PROBE = "import mujoco; r = mujoco.Renderer(mujoco.MjModel.from_xml_string('<mujoco/>'), 8, 8); r.render()"
RENDER_ENVS = textwrap.dedent(
    """
    import gymnasium as gym, numpy as np, pcctrl.envs
    for env_id in {ids!r}:
        env = gym.make(env_id, render_mode="rgb_array", width=64, height=48)
        env.reset(seed=0)
        env.step(env.action_space.sample())
        frame = env.render()
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8, (env_id, frame.shape, frame.dtype)
        assert frame.std() > 1.0, (env_id, "blank frame")
        env.close()
    print("ok")
    """
)


def _run(code: str, backend: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_rgb_array_rendering_offscreen() -> None:
    reasons = []
    for backend in ("egl", "osmesa"):
        probe = _run(RENDER_PROBE, backend)
        if probe.returncode != 0:
            reasons.append(f"{backend}: {probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else '?'}")
            continue
        result = _run(RENDER_ENVS.format(ids=MUJOCO_IDS), backend)
        assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
        return
    pytest.skip("no offscreen OpenGL backend for MuJoCo (" + "; ".join(reasons) + ")")


def test_random_rollout_keeps_true_states_and_is_seeded() -> None:
    from pcctrl.envs import random_rollout

    first = random_rollout("pcctrl/LinearTracking-v0", 30, seed=4)
    again = random_rollout("pcctrl/LinearTracking-v0", 30, seed=4)
    other = random_rollout("pcctrl/LinearTracking-v0", 30, seed=5)
    assert first.states.shape[0] == first.observations.shape[0] == first.actions.shape[0] + 1 == 31
    assert np.array_equal(first.states, again.states) and np.array_equal(first.actions, again.actions)
    assert not np.array_equal(first.actions, other.actions)
    env = gym.make("pcctrl/LinearTracking-v0")
    space = env.action_space
    assert np.all((first.actions >= space.low) & (first.actions <= space.high))
    # the recorded states follow the env's own linear dynamics up to its process noise
    sys = env.unwrapped
    residual = first.states[1:] - (first.states[:-1] @ sys.A.T + first.actions @ sys.B.T)
    assert np.abs(residual).max() < 6 * np.sqrt(np.diag(sys.Q)).max()
    with pytest.raises(ValueError, match="steps: must be at least 1"):
        random_rollout("pcctrl/LinearTracking-v0", 0, seed=0)
