"""ReflexAgent in the SB3 shape: evaluate_policy works, learn logs, save/load resumes identical actions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy

import pcctrl.envs  # noqa: F401
from pcctrl.agents.reflex_agent import ReflexAgent


def test_evaluate_policy_and_learn():
    env = gym.make("pcctrl/ArmReach-v0")
    agent = ReflexAgent(env, seed=0)
    assert agent.learn(250) is agent and agent.num_timesteps == 250
    mean, _ = evaluate_policy(agent, env, n_eval_episodes=2)
    # A random policy scores about -0.4 per step (~ -80 per episode); reaching is far better.
    assert mean > -40.0


def test_save_load_resumes(tmp_path):
    env = gym.make("pcctrl/ArmReach-v0")
    agent = ReflexAgent(env)
    obs, _ = env.reset(seed=3)
    action, _ = agent.predict(obs, episode_start=True)
    for _ in range(30):
        obs, *_ = env.step(action)
        action, _ = agent.predict(obs)
    agent.save(tmp_path / "agent.pkl")
    clone = ReflexAgent.load(tmp_path / "agent.pkl", env=env)
    for _ in range(30):
        obs, *_ = env.step(action)
        action, _ = agent.predict(obs)
        np.testing.assert_array_equal(clone.predict(obs)[0], action)
