"""``FilterReflexController``: a PC filter's belief feeds a reflex active-inference controller."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..control.reflex import ReflexController
from ..estimation.pc_filter import PCFilter
from ..errors import InvalidArgumentError, NotReadyError
from .input_policy import sanitize_observation
from .protocol import Deadline


class FilterReflexController:
    """Estimate with ``filt`` (PC filter), act with ``reflex`` on ``belief.mean[sensed]``.

    ``reset(obs)`` sets the belief to ``(initial_mean, initial_cov)`` and corrects it with the
    first reading; ``step(obs)`` updates the belief with the reading and the last action, then
    runs one reflex tick on the chosen belief entries (``sensed``, default the first
    ``reflex.obs_size``). NaN/inf readings get zero precision (the filter coasts); a wrong shape
    raises :class:`~pcctrl.models.InvalidArgumentError` with belief and reflex state unchanged.
    """

    def __init__(self, filt: PCFilter, reflex: ReflexController, sensed: Any = None,
                 initial_mean: Any = None, initial_cov: Any = None) -> None:
        model = filt.model
        if model.action_dim != reflex.action_dim:
            raise InvalidArgumentError("reflex", f"acts in {reflex.action_dim} dims, the filter's model in "
                                                 f"{model.action_dim}")
        idx = np.arange(reflex.obs_size) if sensed is None else np.asarray(sensed, dtype=np.int64).reshape(-1)
        if idx.size != reflex.obs_size or idx.min() < 0 or idx.max() >= model.state_dim:
            raise InvalidArgumentError("sensed", f"needs {reflex.obs_size} state indices in [0, {model.state_dim})")
        self.filter, self.reflex, self.sensed = filt, reflex, idx
        n = model.state_dim
        self.initial_mean = np.zeros(n) if initial_mean is None else np.asarray(initial_mean, dtype=np.float64)
        self.initial_cov = np.eye(n) if initial_cov is None else np.asarray(initial_cov, dtype=np.float64)
        self.obs_size = model.obs_dim
        self._sensed_t = torch.as_tensor(idx)
        self.reset_done = False

    def reset(self, obs: Any) -> None:
        """Belief from the prior and the first reading; reflex at its goal prior."""
        y = sanitize_observation(obs, self.obs_size)
        self.filter.reset(self.initial_mean, self.initial_cov)
        belief = self.filter.correct(y)
        self.reflex.reset(belief.mean.numpy()[self.sensed])
        self.reset_done = True

    def step(self, obs: Any, deadline: Deadline | None = None) -> np.ndarray:
        """Filter update with the last action, then one reflex tick; returns the action."""
        if not self.reset_done:
            raise NotReadyError("call reset(obs) before step(obs)")
        y = sanitize_observation(obs, self.obs_size)
        belief = self.filter.update(y, self.reflex.action)
        return self.reflex.step(belief.mean.numpy()[self.sensed], deadline)

    def get_state(self) -> dict[str, np.ndarray]:
        """Belief (mean, cov) and the reflex state, as numpy copies."""
        belief = self.filter.belief
        state = {f"reflex.{k}": v for k, v in self.reflex.get_state().items()}
        state.update({"filter.mean": belief.mean.numpy().copy(), "filter.cov": belief.cov.numpy().copy()})
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`get_state`; the filter checks the belief before anything changes."""
        reflex_state = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("reflex.")}
        saved = self.reflex.get_state()
        self.reflex.set_state(reflex_state)
        try:
            self.filter.reset(state["filter.mean"], state["filter.cov"])
        except Exception:
            self.reflex.set_state(saved)
            raise
        self.reset_done = True

    def to_checkpoint(self) -> dict[str, Any]:
        """Filter, reflex, index map and prior as checkpoint data (see :mod:`pcctrl.runtime.checkpoint`)."""
        return {"filter": self.filter, "reflex": self.reflex, "sensed": self.sensed.copy(),
                "initial_mean": self.initial_mean.copy(), "initial_cov": self.initial_cov.copy(),
                "reset_done": self.reset_done}

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> "FilterReflexController":
        """Rebuild a :meth:`to_checkpoint` controller (filter and reflex arrive rebuilt)."""
        controller = cls(data["filter"], data["reflex"], sensed=data["sensed"], initial_mean=data["initial_mean"],
                         initial_cov=data["initial_cov"])
        controller.reset_done = bool(data["reset_done"])
        return controller
