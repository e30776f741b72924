"""Reward preferences under action repeat: termination judged on the same sub-steps as the reward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcctrl.control.efe_score import score
from pcctrl.control.objectives import RewardPreference, mountain_car_reward, mountain_car_terminated


def test_a_goal_crossed_mid_step_ends_the_step_and_is_collected_once() -> None:
    """Action repeat: a model step whose straight-line path crosses MountainCar's goal (position
    >= 0.45 with velocity >= 0) but ends with negative velocity must end the episode there; the
    next step, crossing again, must not collect +100 a second time."""
    pref = RewardPreference(mountain_car_reward, terminated=mountain_car_terminated, substeps=5)
    # (H+1, N=1, members=1, 2): crosses at a sub-step of step 0 and ends at v < 0; step 1 crosses again.
    states = torch.tensor([[0.40, 0.05], [0.50, -0.01], [0.60, 0.05]]).reshape(3, 1, 1, 2)
    actions = torch.zeros(2, 1, 1)
    assert not bool(mountain_car_terminated(states[1]).any())  # the end point alone says "alive"
    assert bool(pref.terminated_path(states[0], states[1]).all())
    total = score(pref, states, actions, None, epistemic_weight=0.0, discount=1.0, terminal_value=None)
    assert float(total) == pytest.approx(100.0)


def test_half_cheetah_reward_tracks_the_env():
    gym = pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    from pcctrl.control import closed_form_reward

    env = gym.make("HalfCheetah-v5")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for _ in range(400):
        action = rng.uniform(-1, 1, 6).astype(np.float32)
        nxt, reward, *_ = env.step(action)
        ours.append(float(closed_form_reward("HalfCheetah-v5").reward(
            torch.as_tensor(obs), torch.as_tensor(action), torch.as_tensor(nxt))))
        theirs.append(float(reward))
        obs = nxt
    ours, theirs = np.array(ours), np.array(theirs)
    assert np.corrcoef(ours, theirs)[0, 1] > 0.93
    assert np.abs(ours - theirs).mean() < 0.3 * theirs.std()
