"""``MemoryImputation``: fill missing or rejected sensor entries by associative recall from stored readings."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InvalidArgumentError, ShapeError
from ..memory import AssociativeMemory, HopfieldMemory


class MemoryImputation:
    """Completes each new reading from an associative memory of windows of past readings.

    ``fit(episodes)`` stores every run of ``window`` consecutive, fully observed readings of each
    episode (a ``(T, p)`` array, or a sequence of them) as one pattern of width ``window * p``.
    Online, ``__call__(reading)`` builds the cue ``[o_{t-window+1}, ..., o_t]`` from the readings
    actually received (NaN where an entry was missing, never a previous imputation, so errors do
    not feed on themselves), recalls it, and returns ``o_t`` with its NaN (and ``rejected``)
    entries replaced by the recalled values; observed entries pass through unchanged. If
    nothing at all is known (start of an episode, every entry missing) the reading is returned
    as it is, NaN included, so a downstream filter coasts. ``reset()`` starts a new episode.

    The default memory is a Universal Hopfield Network with Manhattan similarity and softmax
    separation (``beta=2``) over windows of 20 readings: a softly weighted average of the stored
    windows nearest the cue (settings measured on NoisyPendulum, ``docs/estimation.md``).
    Input arrays or tensors; output a float64 NumPy array of the reading's shape.
    """

    def __init__(self, memory: AssociativeMemory | None = None, window: int = 20) -> None:
        if memory is not None and not isinstance(memory, AssociativeMemory):
            raise InvalidArgumentError(
                "memory", f"must be a pcctrl.memory.AssociativeMemory, got {type(memory).__name__}"
            )
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise InvalidArgumentError("window", f"must be an integer >= 1, got {window!r}")
        self.memory = memory if memory is not None else HopfieldMemory("manhattan", "softmax", beta=2.0,
                                                                        dtype=torch.float64)
        self.window = window
        self.size: int | None = None
        self._history: deque[np.ndarray] = deque(maxlen=window - 1)

    def fit(self, episodes: Any) -> MemoryImputation:
        """Store the fully observed ``window``-long runs of readings of ``episodes``; returns ``self``."""
        single = isinstance(episodes, (np.ndarray, torch.Tensor)) and np.ndim(episodes) == 2
        runs = [episodes] if single else list(episodes)
        patterns, size = [], None
        for i, episode in enumerate(runs):
            array = np.asarray(episode, dtype=np.float64)
            if array.ndim != 2 or array.shape[1] == 0:
                raise ShapeError("episodes", f"episode {i}: expected a (T, p) array of readings, got {array.shape}")
            if size is not None and array.shape[1] != size:
                raise ShapeError("episodes", f"episode {i} has readings of width {array.shape[1]}, the others {size}")
            if np.isinf(array).any():
                raise InvalidArgumentError("episodes", f"episode {i} contains inf")
            size = array.shape[1]
            complete = np.isfinite(array).all(1)
            for t in range(self.window - 1, len(array)):
                if complete[t - self.window + 1:t + 1].all():
                    patterns.append(array[t - self.window + 1:t + 1].reshape(-1))
        if not patterns:
            raise InvalidArgumentError("episodes", f"hold no run of {self.window} fully observed readings to store")
        self.memory.store(torch.as_tensor(np.stack(patterns)))
        self.size = size
        self.reset()
        return self

    @property
    def stored(self) -> int:
        """Number of stored windows."""
        return len(self.memory)

    def reset(self) -> None:
        """Forget the readings of the current episode."""
        self._history.clear()

    def __call__(self, reading: Any, rejected: Sequence[bool] | np.ndarray | None = None) -> np.ndarray:
        """``reading`` with its NaN / ``rejected`` entries replaced by associative recall."""
        if self.size is None:
            raise InvalidArgumentError("memory", "is empty: call fit(episodes) first")
        obs = np.array(reading, dtype=np.float64).reshape(-1)
        if obs.shape[0] != self.size:
            raise ShapeError("reading", f"expected {self.size} entries, got {obs.shape[0]}")
        if np.isinf(obs).any():
            raise InvalidArgumentError("reading", "contains inf; mark a missing entry with NaN")
        if rejected is not None:
            mask = np.asarray(rejected, dtype=bool).reshape(-1)
            if mask.shape != obs.shape:
                raise ShapeError("rejected", f"expected {self.size} flags, got {mask.shape[0]}")
            obs = np.where(mask, np.nan, obs)
        missing = np.isnan(obs)
        past = [np.full(self.size, np.nan)] * (self.window - 1 - len(self._history)) + list(self._history)
        cue = np.concatenate(past + [obs])
        if self.window > 1:
            self._history.append(obs)
        if not missing.any() or np.isnan(cue).all():
            return obs
        recalled = self.memory.recall(torch.as_tensor(cue)).cpu().double().numpy()[-self.size:]
        return np.where(missing, recalled, obs)
