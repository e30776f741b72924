"""``FilterPlannerController``: a PC filter's belief feeds a batched planner (e.g. ``EFEPlanner``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..control.protocol import Planner
from ..errors import InvalidArgumentError, NotReadyError
from ..estimation.belief import Belief
from ..estimation.pc_filter import PCFilter
from ..estimation.perception import Features, Perception
from .input_policy import sanitize_observation
from .protocol import Deadline


class FilterPlannerController:
    """Estimate with ``filt``, act with ``planner``; numpy readings in, a clipped numpy action out.

    The reading goes through the same :class:`~pcctrl.estimation.Perception` step as the
    agent's (a batch of one): the belief starts at ``initial_mean``/``initial_cov`` and is
    corrected by the first reading, then updated with the last action at every step.
    ``features`` maps belief means ``(1, n)`` to what the planner plans on (default: the mean),
    in the filter's dtype (``EFEPlanner`` casts to its own).
    ``belief_samples = k > 0`` plans on ``k`` draws of the belief per step (one start per ensemble
    member, drawn with the planner's own ``generator``), as ``ActiveInferenceAgent`` does with
    ``belief_samples=True`` and ``k = members``.
    The planner's action is checked (shape ``(action_dim,)``, finite) before it is used, so a bad
    plan never reaches the filter or the robot. The planner is one indivisible unit of work: a
    deadline is not passed in.
    """

    def __init__(self, filt: PCFilter, planner: Planner, action_low: Any = None, action_high: Any = None, *,
                 initial_mean: Any = None, initial_cov: Any = None, features: Features | None = None,
                 feature_dim: int | None = None, belief_samples: int = 0) -> None:
        if not callable(getattr(planner, "plan", None)):
            raise InvalidArgumentError("planner", "needs a plan(features (E, d), rows=None) -> actions (E, a) method")
        if belief_samples < 0 or (belief_samples and not isinstance(getattr(planner, "generator", None),
                                                                    torch.Generator)):
            raise InvalidArgumentError("belief_samples", "must be >= 0, and > 0 needs a planner with a torch "
                                                         "generator (EFEPlanner)")
        self.belief_samples = int(belief_samples)
        model = filt.model
        m, n = model.action_dim, model.state_dim
        self.filter, self.planner = filt, planner
        self.action_low = np.full(m, -np.inf) if action_low is None else np.broadcast_to(
            np.asarray(action_low, dtype=np.float64), (m,)).copy()
        self.action_high = np.full(m, np.inf) if action_high is None else np.broadcast_to(
            np.asarray(action_high, dtype=np.float64), (m,)).copy()
        mean0 = np.zeros(n) if initial_mean is None else np.asarray(initial_mean, dtype=np.float64)
        cov0 = np.eye(n) if initial_cov is None else np.asarray(initial_cov, dtype=np.float64)
        self.perception = Perception(model.obs_dim, filt, initial=lambda _obs: (mean0, cov0), features=features,
                                     feature_dim=feature_dim, dtype=None)
        self.obs_size, self.action_dim = model.obs_dim, m
        self.action = np.zeros(m)
        self.reset_done = False

    @property
    def belief(self) -> Belief | None:
        """The filter's belief (a batch of one) after the last reading."""
        return self.perception.belief

    def _plan(self, features: torch.Tensor) -> np.ndarray:
        raw = self.planner.plan(features)
        if hasattr(raw, "detach"):
            raw = raw.detach().cpu().numpy()
        a = np.asarray(raw, dtype=np.float64).reshape(-1)
        if a.shape != (self.action_dim,) or not np.all(np.isfinite(a)):
            raise InvalidArgumentError("planner", f"returned {a!r}; expected a finite ({self.action_dim},) action")
        return np.clip(a, self.action_low, self.action_high)

    def reset(self, obs: Any) -> None:
        """Belief from the prior and the first reading; forget the planner's warm start."""
        y = sanitize_observation(obs, self.obs_size)
        self.perception.reset()
        self.perception.step(y[None], np.ones(1, dtype=bool))
        if callable(getattr(self.planner, "reset", None)):
            self.planner.reset()
        self.action = np.zeros(self.action_dim)
        self.perception.record_actions(self.action[None])
        self.reset_done = True

    def step(self, obs: Any, deadline: Deadline | None = None) -> np.ndarray:
        """Filter update with the last action, then plan from the belief's features."""
        if not self.reset_done:
            raise NotReadyError("call reset(obs) before step(obs)")
        y = sanitize_observation(obs, self.obs_size)
        features = self.perception.step(y[None], np.zeros(1, dtype=bool))
        if self.belief_samples:
            generator = self.planner.generator  # type: ignore[attr-defined]  (checked in __init__)
            features = self.perception.sample_features(self.belief_samples, generator)
        self.action = self._plan(features)
        self.perception.record_actions(self.action[None])
        return self.action.copy()
