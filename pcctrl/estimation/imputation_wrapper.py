"""``ImputedObservation``: a Gymnasium wrapper that fills missing sensor entries by associative recall."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..errors import InvalidArgumentError
from .imputation import MemoryImputation


class ImputedObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Pass each observation through a fitted :class:`MemoryImputation` (NaN entries recalled).

    Put it after ``SensorDropout(mode="nan")`` and before a ``BeliefObservation`` or an agent.
    ``reset`` starts a new episode of the imputation's history. The observation space is the
    wrapped env's (a reading can still hold NaN where nothing was known to recall from, e.g. an
    all-missing first reading), in the env's dtype.
    """

    def __init__(self, env: gym.Env, imputation: MemoryImputation) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, imputation=imputation)
        gym.ObservationWrapper.__init__(self, env)
        if not isinstance(imputation, MemoryImputation):
            raise InvalidArgumentError("imputation", f"must be a MemoryImputation, got {type(imputation).__name__}")
        space = env.observation_space
        if imputation.size is None:
            raise InvalidArgumentError("imputation", "is not fitted: call fit(episodes) first")
        if not isinstance(space, spaces.Box) or int(np.prod(space.shape)) != imputation.size:
            raise InvalidArgumentError(
                "env", f"observation space must be a Box with {imputation.size} entries to match the imputation, "
                       f"got {space}"
            )
        self.imputation = imputation

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the env and the imputation's history."""
        self.imputation.reset()
        return super().reset(seed=seed, options=options)

    def observation(self, observation: Any) -> np.ndarray:
        """``observation`` with its NaN entries replaced by recall."""
        space = self.observation_space
        return self.imputation(observation).reshape(space.shape).astype(space.dtype)
