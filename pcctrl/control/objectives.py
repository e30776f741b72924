"""Preferences from rewards, ``p~(o) ∝ exp(r / tau)``, and closed-form rewards of known envs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from ..errors import InvalidArgumentError

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
    """``log p~(o) = r / tau``: a reward turned into a prior preference (Tschantz et al. 2020).

    With ``substeps = k > 1`` one model step spans ``k`` env steps under a held action (action
    repeat): the reward of a step ``obs -> next_obs`` is the sum of ``reward`` over ``k``
    sub-transitions along the straight line between them, stopping after the first one that
    ``terminated`` ends; :meth:`terminated_path` ends the step on the same sub-steps, so a goal
    crossed mid-step is collected once.
    """

    def __init__(self, reward: RewardFn, tau: float = 1.0, terminated: TerminatedFn | None = None,
                 substeps: int = 1) -> None:
        if not tau > 0:
            raise InvalidArgumentError("tau", f"must be positive, got {tau}")
        if int(substeps) != substeps or substeps < 1:
            raise InvalidArgumentError("substeps", f"must be an integer >= 1, got {substeps}")
        self.reward, self.tau, self._terminated = reward, float(tau), terminated
        self.substeps = int(substeps)

    @classmethod
    def from_spec(cls, spec: RewardSpec, tau: float = 1.0, substeps: int = 1) -> "RewardPreference":
        """The preference of a :class:`RewardSpec`."""
        return cls(spec.reward, tau, spec.terminated, substeps)

    def _path(self, obs: Tensor, next_obs: Tensor) -> Tensor:
        """The ``substeps + 1`` points of the straight line ``obs -> next_obs``, along a leading dimension."""
        frac = torch.arange(self.substeps + 1, dtype=obs.dtype, device=obs.device) / self.substeps
        return obs + (next_obs - obs) * frac.reshape(-1, *([1] * obs.ndim))

    def log_preference(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        if self.substeps == 1:
            return self.reward(obs, action, next_obs) / self.tau
        # All sub-transitions in one batched call: a leading dimension of size ``substeps``.
        k = self.substeps
        points = self._path(obs, next_obs)
        reward = self.reward(points[:-1], action.expand(k, *action.shape), points[1:])
        if self._terminated is not None:
            keep = (~self._terminated(points[1:-1])).to(reward.dtype)
            alive = torch.cat((torch.ones_like(reward[:1]), keep.cumprod(0)), 0)
            reward = reward * alive
        return reward.sum(0) / self.tau

    def terminated(self, next_obs: Tensor) -> Tensor | None:
        return None if self._terminated is None else self._terminated(next_obs)

    def terminated_path(self, obs: Tensor, next_obs: Tensor) -> Tensor | None:
        """Whether the step ``obs -> next_obs`` ends at any of its sub-steps (or at its end)."""
        if self._terminated is None or self.substeps == 1:
            return self.terminated(next_obs)
        return self._terminated(self._path(obs, next_obs)[1:]).any(0)


def step_terminated(preference: Preference, obs: Tensor, next_obs: Tensor) -> Tensor | None:
    """Whether each step ``obs -> next_obs`` ends the episode: on its sub-step path where the
    preference scores one (``terminated_path``), else at ``next_obs``."""
    path = getattr(preference, "terminated_path", None)
    return path(obs, next_obs) if path is not None else preference.terminated(next_obs)


class SummedPreference:
    """``log p~ = sum_i log p~_i``: independent preferences multiplied, e.g. a reward and a goal prior.

    The episode ends where any part says it ends.
    """

    def __init__(self, *parts: Preference) -> None:
        if not parts:
            raise InvalidArgumentError("preferences", "SummedPreference needs at least one preference")
        self.parts = parts

    def log_preference(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        total = self.parts[0].log_preference(obs, action, next_obs)
        for part in self.parts[1:]:
            total = total + part.log_preference(obs, action, next_obs)
        return total

    def terminated(self, next_obs: Tensor) -> Tensor | None:
        return _any_end(part.terminated(next_obs) for part in self.parts)

    def terminated_path(self, obs: Tensor, next_obs: Tensor) -> Tensor | None:
        """Where any part's step ends, each judged as :func:`step_terminated` does."""
        return _any_end(step_terminated(part, obs, next_obs) for part in self.parts)


def _any_end(ends: Iterable[Tensor | None]) -> Tensor | None:
    """The union of the parts' termination masks (``None`` where no part can end an episode)."""
    done: Tensor | None = None
    for end in ends:
        if end is not None:
            done = end if done is None else done | end
    return done


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


def half_cheetah_reward(obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
    """HalfCheetah-v5, from its observations: forward speed less ``0.1 |u|^2``.

    The env rewards the root's mean x-velocity over the step, which the observations do not
    hold; the mean of the velocity at the step's two ends (``obs[8]``, ``qvel[0]``) stands for
    it (correlation 0.97 with the env's reward under random actions; tests/control).
    """
    speed = 0.5 * (obs[..., 8] + next_obs[..., 8])
    return speed - 0.1 * action.square().sum(-1)


_REWARDS: dict[str, RewardSpec] = {
    "Pendulum-v1": RewardSpec(pendulum_reward),
    # The agent plans on belief features [cos, sin, theta_dot]: Pendulum-v1's layout and reward.
    "pcctrl/NoisyPendulum-v0": RewardSpec(pendulum_reward),
    "MountainCarContinuous-v0": RewardSpec(mountain_car_reward, mountain_car_terminated),
    "InvertedPendulum-v5": RewardSpec(inverted_pendulum_reward, inverted_pendulum_terminated),
    # Planned on the Kalman belief [x, theta, x_dot, theta_dot]: InvertedPendulum-v5's layout.
    "pcctrl/PartialInvertedPendulum-v0": RewardSpec(inverted_pendulum_reward, inverted_pendulum_terminated),
    "HalfCheetah-v5": RewardSpec(half_cheetah_reward),
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


__all__ = ["Preference", "RewardPreference", "RewardSpec", "SummedPreference", "closed_form_reward", "inverted_pendulum_reward",
           "mountain_car_reward", "pendulum_reward", "register_reward", "registered_rewards"]
