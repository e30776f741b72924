"""``TerminalValueLearner``: the planner's value beyond the horizon, learned from the agent's own replay."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from pcctrl.models.replay import Transitions
from pcctrl.models.value_model import ValueModel

from .aif_config import AIFConfig


class TerminalValueLearner:
    """A :class:`ValueModel` fitted by TD(0) on replay transitions scored by the planner's preference.

    Each stored transition ``(o, a, o')`` is worth ``log p~(o, a, o')`` (the planner's per-step
    extrinsic value, e.g. ``r / tau``); the value ``V(o) ≈ E[sum_k value_discount^k log p~_k]``
    is that of the agent's own behaviour, in the planner's units, so it can be added beyond the
    horizon (:meth:`EFEPlanner.set_terminal_value`). The value model learns by the PC core.
    """

    def __init__(self, feature_dim: int, config: AIFConfig, *, device: str | torch.device = "cpu") -> None:
        algorithm = "exact" if config.trainer == "bp" else config.trainer
        self.config = config
        self.model = ValueModel(feature_dim, tuple(config.value_hidden), algorithm=algorithm,
                                discount=config.value_discount, seed=config.seed).to(device)

    def fit(self, data: Transitions, log_preference: Callable[[Tensor, Tensor, Tensor], Tensor]) -> list[float]:
        """Score the transitions with ``log_preference`` and run fitted value iteration on them."""
        with torch.no_grad():
            value = log_preference(data.obs.unsqueeze(1), data.actions.unsqueeze(1), data.next_obs.unsqueeze(1))
        steps = self.config.value_train_steps
        rounds = max(1, steps // 50)
        return self.model.fit(data.obs, value.reshape(-1), data.next_obs, data.terminated, rounds=rounds,
                              steps_per_round=max(1, steps // rounds))
