"""``BeliefObservation``: a Gymnasium wrapper whose observation is a PC filter's belief."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from ..errors import InvalidArgumentError
from .pc_filter import PCFilter


class BeliefObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Replace the raw observation by the filter's belief mean (and variances if asked).

    On ``reset`` the filter is reset to ``initial_mean``/``initial_cov`` (defaults: zero mean,
    identity covariance) and corrected with the first reading; on ``step(action)`` it is
    updated with the new reading and that action. The observation is ``mean`` or
    ``concat(mean, variances)`` (``include_variance=True``), in the filter's dtype
    (float32 or float64), in ``Box(-inf, inf)``. The filter must be unbatched.
    """

    def __init__(self, env: gym.Env, filter: PCFilter, include_variance: bool = False,
                 initial_mean: Any = None, initial_cov: Any = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, filter=filter, include_variance=include_variance,
                                                 initial_mean=initial_mean, initial_cov=initial_cov)
        gym.ObservationWrapper.__init__(self, env)
        if not isinstance(filter, PCFilter):
            raise InvalidArgumentError("filter", f"must be a PCFilter, got {type(filter).__name__}")
        model = filter.model
        raw = env.observation_space
        if not isinstance(raw, spaces.Box) or raw.shape != (model.obs_dim,):
            raise InvalidArgumentError(
                "env", f"observation space must be a Box of shape ({model.obs_dim},) to match the model, got {raw}"
            )
        action_space = env.action_space
        if model.action_dim and (not isinstance(action_space, spaces.Box)
                                 or int(np.prod(action_space.shape)) != model.action_dim):
            raise InvalidArgumentError(
                "env", f"action space must be a Box with {model.action_dim} entries to match the model, "
                       f"got {action_space}"
            )
        self.filter = filter
        self.include_variance = include_variance
        self.initial_mean = initial_mean
        self.initial_cov = initial_cov
        filter.reset(initial_mean, initial_cov)
        size = model.state_dim * (2 if include_variance else 1)
        self._np_dtype = np.float64 if model.dtype == torch.float64 else np.float32
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=self._np_dtype)
        self._pending_action: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the env and the filter; the first reading corrects the initial belief."""
        self.filter.reset(self.initial_mean, self.initial_cov)
        self._pending_action = None
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env; the filter predicts with ``action`` and corrects with the new reading."""
        self._pending_action = np.asarray(action, dtype=self._np_dtype).reshape(-1)
        return super().step(action)

    def observation(self, observation: Any) -> np.ndarray:
        """The belief after incorporating ``observation``."""
        reading = np.asarray(observation, dtype=self._np_dtype)
        if self._pending_action is None:
            belief = self.filter.correct(reading)
        else:
            belief = self.filter.update(reading, self._pending_action if self.filter.model.action_dim else None)
        parts = [belief.mean] + ([belief.var] if self.include_variance else [])
        return torch.cat(parts).detach().cpu().numpy().astype(self._np_dtype)
