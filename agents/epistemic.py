"""``EpistemicSchedule``: an epistemic weight that decays as the ensemble's disagreement falls."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

Dynamics = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


class EpistemicSchedule:
    """The planner's epistemic weight: ``base`` (``"constant"``) or ``base * D / D_max``.

    ``D`` is the members' disagreement ``Var_k[mean_k(s, a)]`` over a probe set, relative to the
    variance of the replay's state changes and averaged over entries: up to ``probes`` replay
    states, each paired with a uniform random action within the bounds (seeded), i.e. what the
    model still does not know about the states it has seen under any action; ``D_max`` is the
    largest ``D`` measured so far (not the first: while the learned precision sharpens over the
    first refits the members' disagreement first grows, then falls as data accumulates).
    The planner's information gain is not used for this: it divides by the learned aleatoric
    variance, which shrinks as the fit sharpens, so it can grow with knowledge. As data shrinks the
    disagreement, the weight falls with it, so exploration stops when the model has learned the
    visited region, without a per-env annealing schedule.
    """

    def __init__(self, base: float, mode: str, low: np.ndarray, high: np.ndarray, *, probes: int = 512,
                 seed: int = 0) -> None:
        self.base, self.mode, self.probes = float(base), mode, int(probes)
        self.low, self.high = np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)
        self.seed = seed
        self.first: float | None = None  # the largest D so far
        self.last: float | None = None

    @property
    def weight(self) -> float:
        """The epistemic weight to plan with now."""
        if self.mode == "constant" or self.first is None or self.last is None or self.base == 0:
            return self.base
        return self.base * self.last / self.first if self.first > 0 else 0.0

    @torch.no_grad()
    def measure(self, dynamics: Dynamics, states: Tensor, next_states: Tensor, fit_index: int) -> float:
        """Record the disagreement ``D`` of ``dynamics`` at replay ``states`` ``(n, d)`` (and their successors)."""
        if self.mode == "constant" or self.base == 0 or states.shape[0] < 2:
            return float("nan")
        rng = np.random.default_rng([self.seed, fit_index])
        pick = rng.choice(states.shape[0], size=min(self.probes, states.shape[0]), replace=False)
        actions = rng.uniform(self.low, self.high, size=(len(pick), self.low.size)).astype(np.float32)
        obs = states[torch.as_tensor(pick)]
        means, _ = dynamics(obs, torch.as_tensor(actions, device=obs.device))
        spread = (next_states - states).var(0, unbiased=False).clamp_min(1e-12)
        value = float((means.var(1, unbiased=False) / spread).mean())
        if math.isfinite(value):
            self.last = value
            if self.first is None or value > self.first:
                self.first = value
        return value

    def state_dict(self) -> dict[str, float | None]:
        """The measured disagreements (for identical weights after save/load)."""
        return {"first": self.first, "last": self.last}

    def load_state_dict(self, state: dict[str, float | None]) -> None:
        """Restore :meth:`state_dict`."""
        self.first, self.last = state.get("first"), state.get("last")
