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

from pcctrl.checkpoint_io import is_torch_zip, read_bytes, read_checkpoint, write_checkpoint
from pcctrl.control import GoalPrior, RewardSpec
from pcctrl.errors import CheckpointError, InvalidArgumentError

from .aif_config import AIFConfig
from .env_factory import make_env

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
        "hold": agent.hold.state_dict(), "learner": agent.learner.extra_state(),
    }


def save_agent(agent: Any, path: str | Path | io.BufferedIOBase) -> None:
    """Write :func:`agent_payload` in pcctrl's safe checkpoint format (a path is written atomically)."""
    with torch.no_grad():
        write_checkpoint(path, FORMAT, agent_payload(agent))


def _read_payload(path: str | Path | io.BufferedIOBase, device: str | torch.device) -> tuple[str, dict[str, Any]]:
    name, raw = read_bytes(path)
    if is_torch_zip(raw):  # a pcctrl 0.1 file: torch.save, read without running code
        try:
            data = torch.load(io.BytesIO(raw), map_location=device, weights_only=True)
        except Exception as exc:  # torch raises many types for a corrupt or unsafe file
            raise CheckpointError(name, f"is not a readable ActiveInferenceAgent file: {exc}") from None
    else:
        try:
            _, data = read_checkpoint(name, FORMAT, device=device, data=raw)
        except CheckpointError as exc:
            raise CheckpointError(name, f"is not a readable ActiveInferenceAgent file: {exc.problem}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(name, "is not an ActiveInferenceAgent file")
    if data.get("version") != VERSION:
        raise CheckpointError(name, f"has format version {data.get('version')}, this pcctrl reads {VERSION}")
    return name, data


def load_agent(cls: type, path: str | Path | io.BufferedIOBase, *, env: gym.Env | str | None = None,
               reward: RewardSpec | None = None, device: str | torch.device = "cpu", verbose: int = 0) -> Any:
    """Rebuild an agent of class ``cls`` from a :func:`save_agent` file (see ``ActiveInferenceAgent.load``)."""
    name, data = _read_payload(path, device)
    try:
        obs_dim, action_dim = int(data["obs_dim"]), int(data["action_dim"])
        action_low, action_high = np.asarray(data["action_low"]), np.asarray(data["action_high"])
        source, env_id = data["reward_source"], data["env_id"]
        config = AIFConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data["config"].items()})
        goal = None if data["goal_prior"] is None else GoalPrior(**data["goal_prior"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(name, f"does not describe an ActiveInferenceAgent ({type(exc).__name__}: {exc})") \
            from None
    if env is None:
        if env_id is None:
            raise InvalidArgumentError("env", "the saved agent has no env id: pass env")
        env = make_env(env_id)
    elif isinstance(env, str):
        env = make_env(env)
    obs_space, act_space = env.observation_space, env.action_space
    if not (isinstance(obs_space, spaces.Box) and isinstance(act_space, spaces.Box)
            and obs_space.shape == (obs_dim,) and act_space.shape == (action_dim,)
            and action_low.shape == act_space.shape and action_high.shape == act_space.shape
            and np.allclose(act_space.low, action_low) and np.allclose(act_space.high, action_high)):
        raise InvalidArgumentError("env", f"the env's spaces ({obs_space}, {act_space}) do not match the saved "
                                          f"agent's (obs dim {obs_dim}, action bounds {action_low.tolist()}.."
                                          f"{action_high.tolist()})")
    if source == "custom" and reward is None:
        raise InvalidArgumentError("reward", "the saved agent used a custom reward: pass reward=RewardSpec(...) "
                                             "to load")
    agent = cls(env, config, reward=reward if source == "custom" else None, goal_prior=goal,
                verbose=verbose, device=device)
    if agent.reward_source != source:
        raise InvalidArgumentError("env", f"the saved agent's reward source is {source!r}, "
                                          f"this env gives {agent.reward_source!r}")
    try:
        agent.ensemble.load_state_dict(data["ensemble"])
        agent.ensemble.optimizer.load_state_dict(data["optimizer"])
        if agent.reward_model is not None:
            agent.reward_model.load_state_dict(data["reward_model"])
        agent.buffer.load_state_dict(data["buffer"])
        agent.num_timesteps, agent.learner.n_updates = int(data["num_timesteps"]), int(data["n_updates"])
        agent.learner.load_extra_state(data.get("learner"))
        agent.learner.configure(agent.planner)
        agent.planner.load_state_dict(data["planner"])
        if data.get("hold") is not None:
            agent.hold.load_state_dict(data["hold"])
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(name, f"does not match the agent it describes: {exc}") from None
    return agent
