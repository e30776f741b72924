"""``BeliefObservation`` is a valid Gymnasium env whose observation is the PC filter's belief."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import pcctrl.envs  # noqa: F401  (registers the ids)
from pcctrl.estimation import BeliefObservation, PCFilter
from pcctrl.models import InvalidArgumentError, LinearGaussianModel, pendulum_model


def pendulum_belief_env(include_variance: bool = False, dtype: torch.dtype = torch.float32) -> BeliefObservation:
    env = gym.make("pcctrl/NoisyPendulum-v0", obs_noise_std=0.1, process_noise_std=0.05)
    model = pendulum_model(obs_noise_std=0.1, process_noise_std=0.05, dtype=dtype)
    return BeliefObservation(env, PCFilter(model), include_variance=include_variance,
                             initial_cov=np.diag([3.0, 1.0]))


@pytest.mark.parametrize("include_variance", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_check_env_passes(include_variance: bool, dtype: torch.dtype) -> None:
    env = pendulum_belief_env(include_variance, dtype)
    check_env(env, skip_render_check=True)  # rendering is the base env's (pygame), not the wrapper's
    obs, _ = env.reset(seed=0)
    assert obs.shape == ((4,) if include_variance else (2,))
    assert env.observation_space.contains(obs)


def test_observation_is_the_filter_belief_and_tracks_the_state() -> None:
    env = pendulum_belief_env(include_variance=True, dtype=torch.float64)
    obs, info = env.reset(seed=3)
    rng = np.random.default_rng(3)
    errors = []
    for _ in range(150):
        obs, _, _, _, info = env.step(rng.uniform(-2, 2, size=1).astype(np.float32))
        belief = env.filter.belief
        np.testing.assert_array_equal(obs[:2], belief.mean.numpy())
        np.testing.assert_array_equal(obs[2:], belief.var.numpy())
        err = obs[:2] - info["state"]
        err[0] = (err[0] + np.pi) % (2 * np.pi) - np.pi
        errors.append(err)
    errors = np.array(errors[50:])
    assert np.sqrt(np.mean(errors[:, 0] ** 2)) < 0.1  # the raw reading alone has std 0.1 per axis
    assert np.all(obs[2:] > 0)


def test_linear_tracking_wrapper_rejects_mismatched_model() -> None:
    env = gym.make("pcctrl/LinearTracking-v0")
    u = env.unwrapped
    model = LinearGaussianModel(u.A, u.B, u.C, u.Q, u.R)  # senses 2 entries; the env reports 4
    with pytest.raises(InvalidArgumentError) as info:
        BeliefObservation(env, PCFilter(model))
    assert info.value.argument == "env"
