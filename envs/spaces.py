"""Observation spaces for sensors that can miss a reading."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces


class NaNBox(spaces.Box):
    """A float :class:`~gymnasium.spaces.Box` whose entries may also be NaN ("missing").

    An array belongs to the space when it has the right shape and dtype and every
    entry that is not NaN lies within ``[low, high]``. :meth:`sample` never returns
    NaN. Used by :class:`pcctrl.envs.wrappers.SensorDropout` in ``mode="nan"``, so a
    dropped reading is honestly a member of the observation space.
    """

    def __init__(self, low: Any, high: Any, shape: Any = None, dtype: Any = np.float32, seed: Any = None) -> None:
        """Build the space as :class:`~gymnasium.spaces.Box`; ``dtype`` must be floating."""
        if not np.issubdtype(np.dtype(dtype), np.floating):
            raise TypeError(f"NaNBox: dtype must be a floating type to hold NaN, got {np.dtype(dtype)}")
        super().__init__(low=low, high=high, shape=shape, dtype=dtype, seed=seed)

    def contains(self, x: Any) -> bool:
        """Return whether ``x`` has this shape and dtype and its non-NaN entries are within bounds."""
        if not isinstance(x, np.ndarray):
            try:
                x = np.asarray(x, dtype=self.dtype)
            except (ValueError, TypeError, OverflowError):
                return False
        if not (np.can_cast(x.dtype, self.dtype) and x.shape == self.shape):
            return False
        present = ~np.isnan(x)
        return bool(np.all((x >= self.low)[present]) and np.all((x <= self.high)[present]))

    def __eq__(self, other: object) -> bool:
        """Equal to another NaNBox with the same shape, dtype and bounds (never to a plain Box)."""
        return isinstance(other, NaNBox) and super().__eq__(other)

    def __repr__(self) -> str:
        """Like Box's repr, named NaNBox."""
        return "NaN" + super().__repr__()
