"""Preferences from rewards, ``p~(o) ∝ exp(r / tau)``, and closed-form rewards of known envs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]
TerminatedFn = Callable[[Tensor], Tensor]


class Preference(Protocol):
    """What the planner scores: log preference of a transition and when an episode ends."""

    def log_preference(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor: ...

    def terminated(self, next_obs: Tensor) -> Tensor | None: ...


@dataclass(frozen=True)
class RewardSpec:
    """A closed-form reward ``r(obs, action, next_obs)`` and optional termination ``done(next_obs)``.

    Tensors are batched over any leading dimensions; ``action`` has the same leading shape as
    ``obs``. ``terminated`` returns a bool tensor; after it is true, later rewards do not count.
    """

    reward: RewardFn
    terminated: TerminatedFn | None = None


class RewardPreference:
    """``log p~(o) = r / tau``: a reward turned into a prior preference (Tschantz et al. 2020)."""

    def __init__(self, reward: RewardFn, tau: float = 1.0, terminated: TerminatedFn | None = None) -> None:
        if not tau > 0:
            raise ValueError(f"tau must be positive, got {tau}")
        self.reward, self.tau, self._terminated = reward, float(tau), terminated

    @classmethod
    def from_spec(cls, spec: RewardSpec, tau: float = 1.0) -> "RewardPreference":
        """The preference of a :class:`RewardSpec`."""
        return cls(spec.reward, tau, spec.terminated)

    def log_preference(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        return self.reward(obs, action, next_obs) / self.tau

    def terminated(self, next_obs: Tensor) -> Tensor | None:
        return None if self._terminated is None else self._terminated(next_obs)


def pendulum_reward(obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
    """Pendulum-v1: ``-(theta^2 + 0.1 theta_dot^2 + 0.001 u^2)`` on ``obs = [cos, sin, theta_dot]``."""
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    u = action[..., 0].clamp(-2.0, 2.0)
    return -(theta.square() + 0.1 * obs[..., 2].square() + 0.001 * u.square())


def mountain_car_terminated(next_obs: Tensor) -> Tensor:
    """MountainCarContinuous-v0 ends at position >= 0.45 with velocity >= 0."""
    return (next_obs[..., 0] >= 0.45) & (next_obs[..., 1] >= 0.0)


def mountain_car_reward(obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
    """MountainCarContinuous-v0: ``100`` on reaching the goal, minus ``0.1 u^2``."""
    return 100.0 * mountain_car_terminated(next_obs).to(obs.dtype) - 0.1 * action[..., 0].square()


def inverted_pendulum_terminated(next_obs: Tensor) -> Tensor:
    """InvertedPendulum-v5 ends when the pole angle leaves ``[-0.2, 0.2]`` (or the state is not finite)."""
    return ~(torch.isfinite(next_obs).all(-1) & (next_obs[..., 1].abs() <= 0.2))


def inverted_pendulum_reward(obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
    """InvertedPendulum-v5: ``1`` for every step that does not end the episode."""
    return (~inverted_pendulum_terminated(next_obs)).to(obs.dtype)


_REWARDS: dict[str, RewardSpec] = {
    "Pendulum-v1": RewardSpec(pendulum_reward),
    # The agent plans on belief features [cos, sin, theta_dot]: Pendulum-v1's layout and reward.
    "pcctrl/NoisyPendulum-v0": RewardSpec(pendulum_reward),
    "MountainCarContinuous-v0": RewardSpec(mountain_car_reward, mountain_car_terminated),
    "InvertedPendulum-v5": RewardSpec(inverted_pendulum_reward, inverted_pendulum_terminated),
}


def register_reward(env_id: str, spec: RewardSpec) -> None:
    """Make ``spec`` the closed-form reward of ``env_id`` (replaces an existing entry)."""
    if not isinstance(spec, RewardSpec):
        raise TypeError(f"spec must be a RewardSpec, got {type(spec).__name__}")
    _REWARDS[env_id] = spec


def closed_form_reward(env_id: str | None) -> RewardSpec | None:
    """The registered closed-form reward of ``env_id``, or ``None``."""
    return None if env_id is None else _REWARDS.get(env_id)


def registered_rewards() -> list[str]:
    """Env ids with a closed-form reward."""
    return sorted(_REWARDS)


__all__ = ["Preference", "RewardPreference", "RewardSpec", "closed_form_reward", "inverted_pendulum_reward",
           "mountain_car_reward", "pendulum_reward", "register_reward", "registered_rewards"]
