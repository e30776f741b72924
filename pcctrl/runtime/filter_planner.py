"""``FilterPlannerController``: a PC filter's belief feeds a planner (e.g. ``EFEPlanner``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..estimation.pc_filter import PCFilter
from ..errors import InvalidArgumentError
from .input_policy import sanitize_observation
from .protocol import Deadline, Planner


class BatchedPlanner:
    """A batched planner (``plan(obs (E, d)) -> (E, a)``, such as ``EFEPlanner``) as a runtime ``Planner``.

    ``features`` maps the belief mean to what the planner plans on (for the pendulum,
    ``[cos th, sin th, th_dot]``); by default the mean itself.
    """

    def __init__(self, planner: Any, features: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        if not callable(getattr(planner, "plan", None)):
            raise InvalidArgumentError("planner", "needs a plan(obs) -> action method")
        self.planner, self.features = planner, features

    def plan(self, belief_mean: np.ndarray) -> np.ndarray:
        """The planner's action for a batch of one, as a float64 array."""
        x = belief_mean if self.features is None else self.features(belief_mean)
        action = self.planner.plan(np.asarray(x, dtype=np.float32)[None])
        if hasattr(action, "detach"):
            action = action.detach().cpu().numpy()
        return np.asarray(action, dtype=np.float64)[0]

    def reset(self) -> None:
        """Forget the planner's warm start, if it keeps one."""
        if callable(getattr(self.planner, "reset", None)):
            self.planner.reset()


class FilterPlannerController:
    """Estimate with ``filt``, act with ``planner.plan(belief_mean)``; clip to ``[low, high]``.

    The planner sees the belief mean as a float64 numpy array; its action is checked (shape
    ``(action_dim,)``, finite) before it is used, so a bad plan never reaches the filter or the
    robot. The planner is treated as one indivisible unit of work: a deadline is not passed in.
    """

    def __init__(self, filt: PCFilter, planner: Planner, action_low: Any = None, action_high: Any = None,
                 initial_mean: Any = None, initial_cov: Any = None) -> None:
        if not callable(getattr(planner, "plan", None)):
            raise InvalidArgumentError("planner", "needs a plan(belief_mean) -> action method")
        model = filt.model
        m, n = model.action_dim, model.state_dim
        self.filter, self.planner = filt, planner
        self.action_low = np.full(m, -np.inf) if action_low is None else np.broadcast_to(
            np.asarray(action_low, dtype=np.float64), (m,)).copy()
        self.action_high = np.full(m, np.inf) if action_high is None else np.broadcast_to(
            np.asarray(action_high, dtype=np.float64), (m,)).copy()
        self.initial_mean = np.zeros(n) if initial_mean is None else np.asarray(initial_mean, dtype=np.float64)
        self.initial_cov = np.eye(n) if initial_cov is None else np.asarray(initial_cov, dtype=np.float64)
        self.obs_size, self.action_dim = model.obs_dim, m
        self.action = np.zeros(m)
        self.reset_done = False

    def _plan(self, mean: np.ndarray) -> np.ndarray:
        raw = self.planner.plan(mean.copy())
        if hasattr(raw, "detach"):
            raw = raw.detach().cpu().numpy()
        a = np.asarray(raw, dtype=np.float64).reshape(-1)
        if a.shape != (self.action_dim,) or not np.all(np.isfinite(a)):
            raise InvalidArgumentError("planner", f"returned {a!r}; expected a finite ({self.action_dim},) action")
        return np.clip(a, self.action_low, self.action_high)

    def reset(self, obs: Any) -> None:
        """Belief from the prior and the first reading; the planner's own reset if it has one."""
        y = sanitize_observation(obs, self.obs_size)
        self.filter.reset(self.initial_mean, self.initial_cov)
        self.filter.correct(y)
        if callable(getattr(self.planner, "reset", None)):
            self.planner.reset()
        self.action = np.zeros(self.action_dim)
        self.reset_done = True

    def step(self, obs: Any, deadline: Deadline | None = None) -> np.ndarray:
        """Filter update with the last action, then plan from the belief mean."""
        if not self.reset_done:
            raise RuntimeError("call reset(obs) before step(obs)")
        y = sanitize_observation(obs, self.obs_size)
        belief = self.filter.update(y, self.action)
        self.action = self._plan(belief.mean.numpy())
        return self.action.copy()
