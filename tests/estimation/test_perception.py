"""Perception: batched beliefs equal independent PC filters; the agent and the runtime share it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import pcctrl.envs  # noqa: F401  (registers pcctrl/ ids)
from pcctrl.agents import ActiveInferenceAgent
from pcctrl.agents.families import belief_spec
from pcctrl.errors import InvalidArgumentError, ShapeError
from pcctrl.estimation import PCFilter, Perception
from pcctrl.models import pendulum_model
from pcctrl.runtime import FilterPlannerController

TINY = dict(members=2, hidden=(16, 16), train_steps=20, learning_starts=30, train_freq=30, horizon=5,
            candidates=16, iterations=1, elites=4)


def _initial(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.array([np.arctan2(obs[1], obs[0]), 0.0]), np.diag([0.1, 1.0])


def _model() -> object:
    return pendulum_model(obs_noise_std=0.1, process_noise_std=0.05, dtype=torch.float64)


def test_batched_rows_with_staggered_restarts_equal_independent_filters() -> None:
    rng = np.random.default_rng(0)
    rows, steps = 3, 12
    perception = Perception(2, PCFilter(_model()), initial=_initial, dtype=None)
    refs = [PCFilter(_model()) for _ in range(rows)]
    starts_plan = np.zeros((steps, rows), dtype=bool)
    starts_plan[0] = True
    starts_plan[4, 1] = starts_plan[7, [0, 2]] = starts_plan[9] = True
    actions = None
    for t in range(steps):
        angles = rng.uniform(-np.pi, np.pi, rows)
        obs = np.stack((np.cos(angles), np.sin(angles)), -1) + rng.normal(scale=0.1, size=(rows, 2))
        obs[1, 1] = np.nan if t == 5 else obs[1, 1]  # a missing reading coasts in both
        mean = perception.step(obs, starts_plan[t])
        for i, ref in enumerate(refs):
            if starts_plan[t, i]:
                ref.reset(*_initial(obs[i]))
                expected = ref.correct(obs[i]).mean
            else:
                expected = ref.update(obs[i], actions[i]).mean
            torch.testing.assert_close(mean[i], expected, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(perception.belief.cov[i], ref.belief.cov, rtol=1e-12, atol=1e-12)
        actions = rng.uniform(-2, 2, (rows, 1))
        perception.record_actions(actions)


def test_without_a_filter_the_features_are_the_readings() -> None:
    perception = Perception(2)
    obs = np.array([[0.5, -1.0], [2.0, 3.0]])
    out = perception.step(obs, np.array([True, False]))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor(obs, dtype=torch.float32))
    assert perception.belief is None


def test_bad_input_is_refused_and_the_belief_kept() -> None:
    perception = Perception(2, PCFilter(_model()), initial=_initial)
    perception.step(np.array([[1.0, 0.0]]), np.ones(1, bool))
    before = perception.belief
    with pytest.raises(ShapeError):
        perception.step(np.zeros((1, 3)), np.zeros(1, bool))
    with pytest.raises(ShapeError):
        perception.step(np.zeros((2, 2)), np.zeros(1, bool))
    with pytest.raises(ShapeError):
        perception.record_actions(np.zeros((2, 1)))
    torch.testing.assert_close(perception.belief.mean, before.mean)
    with pytest.raises(InvalidArgumentError):
        Perception(0)
    with pytest.raises(InvalidArgumentError):
        Perception(3, PCFilter(_model()))  # the pendulum model reads 2 entries


@pytest.mark.parametrize("on_draws", [False, True], ids=["belief-mean", "belief-draws"])
def test_agent_predict_and_filter_planner_controller_share_beliefs_and_actions(on_draws: bool) -> None:
    """Same readings and applied actions: the agent's and the runtime's perception and plans agree."""
    env_id = "pcctrl/NoisyPendulum-v0"
    agent = ActiveInferenceAgent(env_id, belief_samples=on_draws, **TINY)
    twin = ActiveInferenceAgent(env_id, belief_samples=on_draws, **TINY)  # same seed: the controller's planner
    spec = belief_spec(env_id)
    env = gym.make(env_id)
    obs, _ = env.reset(seed=4)
    controller = FilterPlannerController(PCFilter(spec.model(env)), twin.planner, env.action_space.low,
                                         env.action_space.high, initial_mean=spec.initial(obs)[0],
                                         initial_cov=spec.initial(obs)[1], features=spec.features,
                                         feature_dim=spec.feature_dim,
                                         belief_samples=TINY["members"] if on_draws else 0)
    action, _ = agent.predict(obs, episode_start=np.array([True]))
    controller.reset(obs)
    torch.testing.assert_close(controller.belief.mean, agent.perception.belief.mean, rtol=0, atol=0)
    # The agent planned at the first reading (on draws of its belief, or at its mean).
    first = (controller.perception.sample_features(TINY["members"], twin.planner.generator) if on_draws
             else spec.features(controller.belief.mean).float())
    twin.planner.plan(first)
    for _ in range(15):
        obs, *_ = env.step(action)
        controller.perception.record_actions(action[None].astype(np.float64))  # the action the robot applied
        expected = controller.step(obs)
        action, _ = agent.predict(obs)
        torch.testing.assert_close(controller.belief.mean, agent.perception.belief.mean, rtol=0, atol=0)
        torch.testing.assert_close(controller.belief.cov, agent.perception.belief.cov, rtol=0, atol=0)
        np.testing.assert_allclose(action, expected, rtol=0, atol=1e-6)
