"""Latency statistics of control steps: p50, p99, max and missed deadlines."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError


class LatencyStats:
    """Records step durations (seconds) in a preallocated ring of the last ``capacity`` steps."""

    def __init__(self, capacity: int = 100_000) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InvalidArgumentError("capacity", f"must be an integer >= 1, got {capacity!r}")
        self._buf = np.zeros(capacity)
        self.count = 0
        self.missed = 0

    def record(self, seconds: float, missed: bool = False) -> None:
        """Add one step's duration; ``missed``: it ended after its deadline."""
        self._buf[self.count % self._buf.size] = seconds
        self.count += 1
        self.missed += bool(missed)

    def reset(self) -> None:
        """Forget every recorded step."""
        self.count = 0
        self.missed = 0

    @property
    def samples(self) -> np.ndarray:
        """The recorded durations still held (the most recent ``capacity``), unordered."""
        return self._buf[:min(self.count, self._buf.size)].copy()

    def summary(self) -> dict[str, float]:
        """``{"steps", "p50_us", "p99_us", "max_us", "missed"}`` (NaN percentiles when empty)."""
        s = self.samples * 1e6
        if s.size == 0:
            return {"steps": 0, "p50_us": float("nan"), "p99_us": float("nan"), "max_us": float("nan"),
                    "missed": self.missed}
        return {"steps": self.count, "p50_us": float(np.percentile(s, 50)), "p99_us": float(np.percentile(s, 99)),
                "max_us": float(s.max()), "missed": self.missed}

    def table(self, name: str = "controller") -> str:
        """One markdown table row set: name, steps, p50, p99, max (µs), missed deadlines."""
        r = self.summary()
        return ("| controller | steps | p50 µs | p99 µs | max µs | missed |\n|---|---|---|---|---|---|\n"
                f"| {name} | {r['steps']} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {r['max_us']:.1f} | {r['missed']} |")
