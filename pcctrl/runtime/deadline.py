"""Per-step deadlines with an injectable clock, so anytime logic is testable without timing."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class StepDeadline:
    """Callable that is true once ``clock() - start >= budget_s`` (never true for ``budget_s=None``)."""

    __slots__ = ("clock", "end")

    def __init__(self, budget_s: float | None, clock: Clock = time.perf_counter, start: float | None = None) -> None:
        self.clock = clock
        begin = clock() if start is None else start
        self.end = float("inf") if budget_s is None else begin + budget_s

    def __call__(self) -> bool:
        return self.clock() >= self.end
