"""``RealtimeController``: a per-step time budget (anytime inference) and latency statistics."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from .deadline import Clock, StepDeadline
from .latency import LatencyStats
from .protocol import Controller

# Clocks a checkpoint can name (it stores no code, so a custom clock cannot be saved).
_CLOCKS = {"perf_counter": time.perf_counter, "monotonic": time.monotonic, "time": time.time}


class RealtimeController:
    """Wraps a :class:`Controller`: each ``step`` gets a deadline ``budget_s`` after it starts.

    The inner controller stops relaxing once the deadline passes and returns its best action so
    far; a step that still ends after the deadline counts as missed. ``clock`` (seconds) is
    injectable so deadline behaviour is testable without real timing.
    """

    def __init__(self, controller: Controller, budget_s: float | None = 0.001, clock: Clock = time.perf_counter,
                 stats: LatencyStats | None = None) -> None:
        if budget_s is not None and not budget_s > 0:
            raise InvalidArgumentError("budget_s", f"must be None or > 0, got {budget_s!r}")
        self.controller = controller
        self.budget_s = budget_s
        self.clock = clock
        self.stats = stats if stats is not None else LatencyStats()

    def reset(self, obs: Any) -> None:
        """Reset the inner controller (not timed)."""
        self.controller.reset(obs)

    def step(self, obs: Any) -> np.ndarray:
        """One timed step under the budget."""
        start = self.clock()
        deadline = StepDeadline(self.budget_s, self.clock, start)
        action = self.controller.step(obs, deadline=deadline)
        end = self.clock()
        self.stats.record(end - start, end > deadline.end)
        return action

    def to_checkpoint(self) -> dict[str, Any]:
        """Inner controller, budget, clock name and statistics as checkpoint data.

        Raises :class:`~pcctrl.errors.InvalidArgumentError` for a clock other than
        ``time.perf_counter``, ``time.monotonic`` or ``time.time`` (a checkpoint holds no code).
        """
        names = [name for name, clock in _CLOCKS.items() if clock is self.clock]
        if not names:
            raise InvalidArgumentError("clock", "a custom clock cannot be saved in a checkpoint (it stores no code); "
                                                "use time.perf_counter, or save the inner controller")
        return {"controller": self.controller, "budget_s": self.budget_s, "clock": names[0], "stats": self.stats}

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> "RealtimeController":
        """Rebuild a :meth:`to_checkpoint` controller."""
        return cls(data["controller"], budget_s=data["budget_s"], clock=_CLOCKS[data["clock"]], stats=data["stats"])
