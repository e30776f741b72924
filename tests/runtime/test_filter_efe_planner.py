"""A PC filter's belief feeding the EFE planner through the runtime: it swings the pendulum up."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

import pcctrl.envs  # noqa: F401  (registers the ids)
from pcctrl.control import EFEPlanner, RewardPreference, closed_form_reward, known_dynamics
from pcctrl.estimation import PCFilter
from pcctrl.models import pendulum_model
from pcctrl.runtime import FilterPlannerController

DT, G = 0.05, 10.0


def pendulum_features_step(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1's equations (Gym's source of truth, written out) on [cos, sin, th_dot]."""
    theta = torch.atan2(obs[:, 1], obs[:, 0])
    torque = action[:, 0].clamp(-2.0, 2.0)
    speed = (obs[:, 2] + (3 * G / 2 * torch.sin(theta) + 3.0 * torque) * DT).clamp(-8.0, 8.0)
    theta = theta + speed * DT
    return torch.stack((torch.cos(theta), torch.sin(theta), speed), -1)


def features(mean: torch.Tensor) -> torch.Tensor:
    return torch.stack((torch.cos(mean[:, 0]), torch.sin(mean[:, 0]), mean[:, 1]), -1)


def test_filter_plus_efe_planner_swings_up_the_noisy_pendulum() -> None:
    planner = EFEPlanner(known_dynamics(pendulum_features_step),
                         RewardPreference.from_spec(closed_form_reward("Pendulum-v1")),
                         torch.tensor([-2.0]), torch.tensor([2.0]), horizon=25, candidates=300, seed=0)
    env = gym.make("pcctrl/NoisyPendulum-v0", obs_noise_std=0.1)
    obs, info = env.reset(seed=3)
    theta0 = float(np.arctan2(obs[1], obs[0]))
    filt = PCFilter(pendulum_model(DT, obs_noise_std=0.1, process_noise_std=0.05, dtype=torch.float64))
    controller = FilterPlannerController(filt, planner, -2.0, 2.0, initial_mean=[theta0, 0.0],
                                         initial_cov=np.diag([0.05, 1.0]), features=features, feature_dim=3)
    controller.reset(obs)
    upright = 0
    for _ in range(200):
        obs, reward, _, _, info = env.step(controller.step(obs).astype(np.float32))
        theta = (info["state"][0] + np.pi) % (2 * np.pi) - np.pi
        upright += abs(theta) < 0.3
    assert upright >= 100  # up within half an episode and held there, from noisy angle readings only
    assert abs(controller.belief.mean[0, 0].item() - info["state"][0]) < 0.2
