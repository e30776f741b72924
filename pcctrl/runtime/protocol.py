"""The ``Controller`` protocol (what a robot loop relies on); ``Planner`` is :mod:`pcctrl.control.protocol`'s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..control.protocol import Planner

Deadline = Callable[[], bool]
"""A zero-argument callable that is true once the step's time budget is spent."""


@runtime_checkable
class Controller(Protocol):
    """``reset(obs)`` at the start of an episode, then ``step(obs) -> action`` every control tick.

    Observations and actions are 1-D numpy arrays; no Gymnasium needed. ``step`` accepts an
    optional ``deadline`` callable: anytime inference stops relaxing once it returns true.
    """

    def reset(self, obs: Any) -> None:
        """Start from the first reading."""

    def step(self, obs: Any, deadline: Deadline | None = None) -> np.ndarray:
        """One control tick; returns the action to apply now."""


__all__ = ["Controller", "Deadline", "Planner"]
