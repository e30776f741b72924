"""Saving and loading an ``ActiveInferenceAgent``: config, models, planner state, buffer, action hold."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from pcctrl.control import GoalPrior, RewardSpec

from .aif_config import AIFConfig

FORMAT = "pcctrl.ActiveInferenceAgent"
VERSION = 1


def agent_payload(agent: Any) -> dict[str, Any]:
    """Everything :func:`load_agent` needs, as tensors and plain values."""
    space = agent.env.observation_space
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(agent.config).items()}
    goal = agent.goal_prior
    return {
        "format": FORMAT, "version": VERSION, "config": config, "env_id": agent.env_id,
        "obs_dim": agent.obs_dim, "action_dim": agent.action_dim,
        "obs_low": torch.as_tensor(space.low), "obs_high": torch.as_tensor(space.high),
        "action_low": torch.as_tensor(agent.env.action_space.low),
        "action_high": torch.as_tensor(agent.env.action_space.high),
        "reward_source": agent.reward_source, "num_timesteps": agent.num_timesteps, "n_updates": agent.n_updates,
        "ensemble": agent.ensemble.state_dict(), "optimizer": agent.ensemble.optimizer.state_dict(),
        "reward_model": None if agent.reward_model is None else agent.reward_model.state_dict(),
        "goal_prior": None if goal is None else
        {"goal": goal.goal, "precision": goal.precision, "action_precision": goal.action_precision},
        "planner": agent.planner.state_dict(), "buffer": agent.buffer.state_dict(),
        "hold": agent.hold.state_dict(),
    }


def save_agent(agent: Any, path: str | Path | io.BufferedIOBase) -> None:
    """Write :func:`agent_payload` to ``path``."""
    torch.save(agent_payload(agent), path)


def load_agent(cls: type, path: str | Path | io.BufferedIOBase, *, env: gym.Env | str | None = None,
               reward: RewardSpec | None = None, device: str | torch.device = "cpu", verbose: int = 0) -> Any:
    """Rebuild an agent of class ``cls`` from a :func:`save_agent` file (see ``ActiveInferenceAgent.load``)."""
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise ValueError(f"{path!r} is not a readable ActiveInferenceAgent file: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not an ActiveInferenceAgent file")
    if data.get("version") != VERSION:
        raise ValueError(f"{path!r} has format version {data.get('version')}, this pcctrl reads {VERSION}")
    if env is None:
        if data["env_id"] is None:
            raise ValueError("the saved agent has no env id: pass env")
        env = gym.make(data["env_id"])
    elif isinstance(env, str):
        env = gym.make(env)
    obs_space, act_space = env.observation_space, env.action_space
    if not (isinstance(obs_space, spaces.Box) and isinstance(act_space, spaces.Box)
            and obs_space.shape == (data["obs_dim"],) and act_space.shape == (data["action_dim"],)
            and np.allclose(act_space.low, data["action_low"].numpy())
            and np.allclose(act_space.high, data["action_high"].numpy())):
        raise ValueError(f"the env's spaces ({obs_space}, {act_space}) do not match the saved agent's "
                         f"(obs dim {data['obs_dim']}, action bounds {data['action_low'].tolist()}.."
                         f"{data['action_high'].tolist()})")
    source = data["reward_source"]
    if source == "custom" and reward is None:
        raise ValueError("the saved agent used a custom reward: pass reward=RewardSpec(...) to load")
    config = AIFConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data["config"].items()})
    goal = None if data["goal_prior"] is None else GoalPrior(**data["goal_prior"])
    agent = cls(env, config, reward=reward if source == "custom" else None, goal_prior=goal,
                verbose=verbose, device=device)
    if agent.reward_source != source:
        raise ValueError(f"the saved agent's reward source is {source!r}, this env gives {agent.reward_source!r}")
    try:
        agent.ensemble.load_state_dict(data["ensemble"])
        agent.ensemble.optimizer.load_state_dict(data["optimizer"])
        if agent.reward_model is not None:
            agent.reward_model.load_state_dict(data["reward_model"])
        agent.buffer.load_state_dict(data["buffer"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path!r} does not match the agent it describes: {exc}") from exc
    agent.planner.set_dynamics(agent.learner.planning_dynamics())
    agent.planner.load_state_dict(data["planner"])
    if data.get("hold") is not None:
        agent.hold.load_state_dict(data["hold"])
    agent.num_timesteps, agent.learner.n_updates = int(data["num_timesteps"]), int(data["n_updates"])
    return agent
