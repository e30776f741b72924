"""``Perception``: readings of a batch of environments -> the features a planner plans on.

The one perception step of pcctrl: :class:`~pcctrl.agents.ActiveInferenceAgent` and
:class:`~pcctrl.runtime.FilterPlannerController` both run it. Without a filter the features are
the readings themselves; with a :class:`PCFilter` they are features of its belief, which is
reset from the first reading of every episode and updated with the action last applied.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidArgumentError, ShapeError
from .belief import Belief
from .pc_filter import PCFilter

InitialBelief = Callable[[np.ndarray], tuple[Any, Any]]
"""Maps an episode's first reading ``(obs_dim,)`` to the prior ``(mean (n,), cov (n, n))``."""

Features = Callable[[Tensor], Tensor]
"""Maps belief means ``(E, n)`` to planning features ``(E, feature_dim)``."""


class Perception:
    """Batched perception over ``E`` environment rows.

    ``step(obs (E, obs_dim), episode_start (E,))`` returns features ``(E, feature_dim)`` on
    ``device``, of ``dtype`` (``None``: the filter's own, float64 for readings without a filter). With ``filt`` (a :class:`PCFilter`) rows where ``episode_start`` is true, and
    every row on the first call or when ``E`` changes, restart from ``initial(obs_row)`` and are
    corrected by the reading; the others are updated with the action given to
    :meth:`record_actions` since their last reading. ``features`` maps belief means to what
    the planner sees (default: the mean itself; ``feature_dim`` then defaults to the state size).
    """

    def __init__(self, obs_dim: int, filt: PCFilter | None = None, *, initial: InitialBelief | None = None,
                 features: Features | None = None, feature_dim: int | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype | None = torch.float32) -> None:
        if isinstance(obs_dim, bool) or not isinstance(obs_dim, int) or obs_dim < 1:
            raise InvalidArgumentError("obs_dim", f"must be a positive integer, got {obs_dim!r}")
        if filt is None and (initial is not None or features is not None):
            raise InvalidArgumentError("filt", "initial and features need a filter to act on")
        if filt is not None and filt.model.obs_dim != obs_dim:
            raise InvalidArgumentError("filt", f"its model reads {filt.model.obs_dim} entries, the env gives {obs_dim}")
        self.obs_dim, self.filter, self.device, self.dtype = obs_dim, filt, torch.device(device), dtype
        if filt is None:
            self.feature_dim = obs_dim
        else:
            n = filt.model.state_dim
            self.feature_dim = int(feature_dim) if feature_dim is not None else n
            self._initial: InitialBelief = initial or (lambda _obs: (np.zeros(n), np.eye(n)))
            self._features: Features = features or (lambda mean: mean)
        self._rows = 0
        self._last_actions: np.ndarray | None = None

    @property
    def belief(self) -> Belief | None:
        """The batched belief ``(E, n)``/``(E, n, n)`` after the last step (``None`` without a filter or before it)."""
        return None if self.filter is None or self._rows == 0 else self.filter.belief

    def reset(self) -> None:
        """Forget every row: the next step restarts all of them."""
        self._rows, self._last_actions = 0, None

    def record_actions(self, actions: Any) -> None:
        """The actions ``(E, action_dim)`` applied after the last step's readings."""
        if self.filter is None:
            return
        arr = np.asarray(actions, dtype=np.float64)
        size = self.filter.model.action_dim
        if arr.shape != (self._rows, size):
            raise ShapeError("actions", f"expected shape ({self._rows}, {size}), got {np.shape(actions)}")
        self._last_actions = arr

    def step(self, obs: np.ndarray, episode_start: np.ndarray) -> Tensor:
        """Features of each row after taking in its reading."""
        obs = np.asarray(obs, dtype=np.float64)
        starts = np.asarray(episode_start, dtype=bool).reshape(-1)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim or starts.shape[0] != obs.shape[0]:
            raise ShapeError("obs", f"expected (E, {self.obs_dim}) readings and E episode_start flags, "
                                    f"got {obs.shape} and {starts.shape}")
        if self.filter is None:
            return torch.as_tensor(obs, dtype=self.dtype or torch.float64, device=self.device)
        if obs.shape[0] != self._rows or self._last_actions is None:
            starts = np.ones(obs.shape[0], dtype=bool)
        if starts.all():
            mean = self._restart(self.filter, obs)
        elif not starts.any():
            mean = self.filter.update(obs, self._last_actions).mean
        else:
            mean = self._mixed(obs, starts)
        self._rows = obs.shape[0]
        features = self._features(mean)
        return features.to(self.device, self.dtype or features.dtype)

    def sample_features(self, samples: int, generator: torch.Generator) -> Tensor:
        """Features of ``samples`` draws from each row's belief ``N(mean, cov)``: ``(E, samples, feature_dim)``.

        Needs a belief: without a filter, or before the first step, it raises ``InvalidArgumentError``.
        """
        if samples < 1:
            raise InvalidArgumentError("samples", f"must be >= 1, got {samples}")
        belief = self.belief
        if belief is None:
            raise InvalidArgumentError("samples", "there is no belief to sample: step a filtered perception first")
        mean, cov = belief.mean, belief.cov
        rows, n = mean.shape
        # The covariance is PSD but may be singular (an exactly known entry): factor it with a floor.
        values, vectors = torch.linalg.eigh(0.5 * (cov + cov.transpose(-1, -2)))
        root = vectors * values.clamp_min(0).sqrt().unsqueeze(-2)
        z = torch.randn(rows, samples, n, generator=generator, dtype=mean.dtype, device=generator.device)
        z = z.to(mean.device)
        draws = mean.unsqueeze(1) + torch.einsum("eij,esj->esi", root, z)
        features = self._features(draws.reshape(rows * samples, n)).reshape(rows, samples, -1)
        return features.to(self.device, self.dtype or features.dtype)

    def _restart(self, filt: PCFilter, obs: np.ndarray) -> Tensor:
        priors = [self._initial(row) for row in obs]
        mean = np.stack([np.asarray(m, dtype=np.float64) for m, _ in priors])
        cov = np.stack([np.asarray(c, dtype=np.float64) for _, c in priors])
        filt.reset(mean, cov)
        return filt.correct(obs).mean

    def _mixed(self, obs: np.ndarray, starts: np.ndarray) -> Tensor:
        """Restart some rows and update the rest: each group as its own batch, then rejoined."""
        assert self.filter is not None and self._last_actions is not None
        before = self.filter.belief
        mean, cov = before.mean.clone(), before.cov.clone()
        fresh, going = copy.copy(self.filter), copy.copy(self.filter)
        self._restart(fresh, obs[starts])
        going_rows = torch.as_tensor(~starts)
        going.reset(mean[going_rows], cov[going_rows])
        going.update(obs[~starts], self._last_actions[~starts])
        start_rows = torch.as_tensor(starts)
        mean[start_rows], cov[start_rows] = fresh.belief.mean, fresh.belief.cov
        mean[going_rows], cov[going_rows] = going.belief.mean, going.belief.cov
        self.filter.reset(mean, cov)
        return mean
