"""``ReplayBuffer``: a fixed-capacity store of transitions for model learning."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidArgumentError, ShapeError


class Transitions(NamedTuple):
    """A batch of transitions as float tensors: ``(n, obs_dim)``, ``(n, act_dim)``, ``(n,)``..."""

    obs: Tensor
    actions: Tensor
    next_obs: Tensor
    rewards: Tensor
    terminated: Tensor


class ReplayBuffer:
    """Ring buffer of ``(obs, action, next_obs, reward, terminated)``; oldest overwritten first."""

    def __init__(self, obs_dim: int, action_dim: int, capacity: int = 1_000_000) -> None:
        if obs_dim < 1 or action_dim < 1:
            raise InvalidArgumentError("obs_dim", f"and action_dim must be positive, got {obs_dim}, {action_dim}")
        if capacity < 1:
            raise InvalidArgumentError("capacity", f"must be positive, got {capacity}")
        self.obs_dim, self.action_dim, self.capacity = obs_dim, action_dim, capacity
        self._obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self._actions = np.zeros((capacity, action_dim), dtype=np.float32)
        self._next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self._rewards = np.zeros(capacity, dtype=np.float32)
        self._terminated = np.zeros(capacity, dtype=np.float32)
        self._pos = 0
        self._size = 0
        self.added = 0  # transitions ever added: the insertion index of the next one

    def __len__(self) -> int:
        return self._size

    def add(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray, reward: float,
            terminated: bool) -> None:
        """Store one transition; every value must be finite and of the buffer's sizes."""
        obs = np.asarray(obs, dtype=np.float32).reshape(-1)
        action = np.asarray(action, dtype=np.float32).reshape(-1)
        next_obs = np.asarray(next_obs, dtype=np.float32).reshape(-1)
        if obs.shape != (self.obs_dim,) or next_obs.shape != (self.obs_dim,):
            raise ShapeError("obs", f"observations must have {self.obs_dim} entries, got {obs.size} and "
                                    f"{next_obs.size}")
        if action.shape != (self.action_dim,):
            raise ShapeError("action", f"actions must have {self.action_dim} entries, got {action.size}")
        reward = float(reward)
        if not (np.isfinite(obs).all() and np.isfinite(action).all() and np.isfinite(next_obs).all()
                and np.isfinite(reward)):
            raise InvalidArgumentError("transition", "a transition must be finite (got NaN or inf in obs, action, "
                                                     "next obs or reward)")
        i = self._pos
        self._obs[i], self._actions[i], self._next_obs[i] = obs, action, next_obs
        self._rewards[i], self._terminated[i] = reward, float(terminated)
        self._pos = (i + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)
        self.added += 1

    def all(self, device: torch.device | str = "cpu") -> Transitions:
        """Every stored transition, oldest first."""
        order = np.arange(self._size) if self._size < self.capacity else np.roll(np.arange(self.capacity), -self._pos)
        return Transitions(*(torch.as_tensor(a[order], device=device) for a in
                             (self._obs, self._actions, self._next_obs, self._rewards, self._terminated)))

    def indices(self) -> np.ndarray:
        """Insertion index of every stored transition, in :meth:`all`'s order (oldest first)."""
        return np.arange(self.added - self._size, self.added)

    def state_dict(self) -> dict[str, object]:
        """Contents, for saving (numpy arrays become tensors)."""
        t = self.all()
        return {"obs": t.obs, "actions": t.actions, "next_obs": t.next_obs, "rewards": t.rewards,
                "terminated": t.terminated, "capacity": self.capacity, "added": self.added}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Replace the contents with a :meth:`state_dict`."""
        self.__init__(self.obs_dim, self.action_dim, int(state["capacity"]))  # type: ignore[misc, arg-type]
        obs = state["obs"]
        for k in range(len(obs)):  # type: ignore[arg-type]
            self.add(obs[k].numpy(), state["actions"][k].numpy(), state["next_obs"][k].numpy(),  # type: ignore[index]
                     float(state["rewards"][k]), bool(state["terminated"][k]))  # type: ignore[index]
        self.added = max(self._size, int(state.get("added", self._size)))  # type: ignore[call-overload]
