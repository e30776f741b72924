"""``ModelLearner``: the agent's models and their data, refitted by the PC core."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pcctrl.errors import DivergenceError, NotReadyError, ShapeError
from pcctrl.models.dynamics_ensemble import DynamicsEnsemble
from pcctrl.models.replay import ReplayBuffer
from pcctrl.models.reward_model import RewardModel
from pcctrl.models.rollout_loss import sequence_starts
from pcctrl.models.validated_fit import FitReport, Split, fit_validated, holdout_mask

from .aif_config import AIFConfig
from .epistemic import EpistemicSchedule
from .terminal_value import TerminalValueLearner

Dynamics = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def _usable_rollout_steps(k: int, obs: Tensor, next_obs: Tensor, ends: Tensor) -> int:
    """``k``, or 1 (with a warning) while these training transitions hold no run of ``k``."""
    if k == 1:
        return 1
    try:
        sequence_starts(obs, next_obs, k, ends)
    except ShapeError:
        warnings.warn(f"no run of {k} consecutive transitions in the replay yet: this refit uses the one-step loss",
                      RuntimeWarning, stacklevel=4)
        return 1
    return k


class ModelLearner:
    """A PC-trained dynamics ensemble, an optional PC reward model, and the replay buffer they learn from.

    Transitions are over ``feature_dim`` features (observations, or belief features) and
    ``action_dim`` actions; with ``learn_reward`` a :class:`RewardModel` learns the (summed)
    reward of each stored transition. All sizes and rates come from ``config`` by keyword.

    With ``config.holdout_fraction > 0`` each refit is validated (:func:`fit_validated`): a
    seeded share of the replay is held out, training stops early on its NLL, and a refit that is
    worse on it is discarded (``last_report`` says what happened). A refit that diverges keeps
    the previous model and warns (``RuntimeWarning``); ``rejected_fits`` counts both cases.
    ``epistemic`` (an :class:`EpistemicSchedule`) and ``value`` (a :class:`TerminalValueLearner`,
    or ``None``) are refreshed after every fit; :meth:`configure` hands all of it to a planner.
    """

    def __init__(self, feature_dim: int, action_dim: int, config: AIFConfig, *, learn_reward: bool = False,
                 action_low: np.ndarray | None = None, action_high: np.ndarray | None = None,
                 device: str | torch.device = "cpu") -> None:
        cfg = config
        self.config, self.device = cfg, torch.device(device)
        self.ensemble = DynamicsEnsemble(feature_dim, action_dim, members=cfg.members, hidden=tuple(cfg.hidden),
                                         trainer=cfg.trainer, T=cfg.T, x_lr=cfg.x_lr, lr=cfg.lr,
                                         weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                                         heteroscedastic=cfg.heteroscedastic, seed=cfg.seed).to(self.device)
        self.reward_model: RewardModel | None = None
        if learn_reward:
            # The reward model always learns by PC; under the "bp" ablation it uses Z-IL.
            algorithm = "exact" if cfg.trainer == "bp" else cfg.trainer
            self.reward_model = RewardModel(feature_dim, action_dim, tuple(cfg.reward_hidden), algorithm=algorithm,
                                            seed=cfg.seed).to(self.device)
        self.buffer = ReplayBuffer(feature_dim, action_dim, cfg.buffer_size)
        low = np.full(action_dim, -1.0) if action_low is None else action_low
        high = np.full(action_dim, 1.0) if action_high is None else action_high
        self.epistemic = EpistemicSchedule(cfg.epistemic_weight, cfg.epistemic_schedule, low, high, seed=cfg.seed)
        self.value = TerminalValueLearner(feature_dim, cfg, device=self.device) if cfg.terminal_value else None
        self.n_updates = 0
        self.rejected_fits = 0
        self.last_report: FitReport | None = None

    def add(self, features: Tensor, action: np.ndarray, next_features: Tensor, reward: float,
            terminated: bool) -> None:
        """Store one transition (features as ``(feature_dim,)`` tensors)."""
        self.buffer.add(features.cpu().numpy(), action, next_features.cpu().numpy(), reward, terminated)

    def fit(self) -> float:
        """Refit the ensemble (and the reward model) on the buffer; the last batch NLL (NaN if none)."""
        cfg = self.config
        data = self.buffer.all(self.device)
        losses = self._fit_ensemble(data.obs, data.actions, data.next_obs, data.terminated.bool())
        if self.reward_model is not None:
            self.reward_model.fit(data.obs, data.actions, data.next_obs, data.rewards, cfg.reward_train_steps)
        self.n_updates += cfg.train_steps
        if cfg.epistemic_schedule != "constant":
            self.epistemic.measure(self.planning_dynamics(with_gain=False), data.obs, data.next_obs,
                                   self.ensemble.n_fits)
        return losses[-1] if losses else float("nan")

    def _fit_ensemble(self, obs: Tensor, actions: Tensor, next_obs: Tensor, ends: Tensor) -> list[float]:
        cfg = self.config
        held = holdout_mask(self.buffer.indices(), cfg.holdout_fraction, cfg.seed) if cfg.holdout_fraction else None
        try:
            if held is None or held.all() or not held.any():
                k = _usable_rollout_steps(cfg.model_rollout_steps, obs, next_obs, ends)
                return self.ensemble.fit(obs, actions, next_obs, cfg.train_steps, rollout_steps=k, episode_ends=ends)
            mask = torch.as_tensor(held, device=obs.device)
            k = _usable_rollout_steps(cfg.model_rollout_steps, obs[~mask], next_obs[~mask], ends[~mask])
            report = fit_validated(self.ensemble, Split(obs[~mask], actions[~mask], next_obs[~mask]),
                                   Split(obs[mask], actions[mask], next_obs[mask]), cfg.train_steps,
                                   eval_every=cfg.validation_every, patience=cfg.validation_patience,
                                   rollout_steps=k, episode_ends=ends[~mask])
        except DivergenceError as exc:
            self.rejected_fits += 1
            warnings.warn(f"model refit skipped, previous model kept: {exc}", RuntimeWarning, stacklevel=3)
            return []
        self.last_report = report
        self.rejected_fits += not report.accepted
        return report.losses

    def record(self, logger: Any, nll: float) -> None:
        """Write the last refit's figures to an SB3 logger."""
        logger.record("train/model_nll", nll)
        logger.record("train/n_updates", self.n_updates)
        if self.last_report is not None:
            logger.record("train/held_out_nll", self.last_report.nll)
            logger.record("train/rejected_fits", self.rejected_fits)

    def fit_value(self, log_preference: Callable[[Tensor, Tensor, Tensor], Tensor]) -> None:
        """Refit the terminal value (if configured) on the buffer, scored by ``log_preference``."""
        if self.value is not None and len(self.buffer) > 0:
            self.value.fit(self.buffer.all(self.device), log_preference)

    def configure(self, planner: Any) -> None:
        """Give ``planner`` the current dynamics, epistemic weight and terminal value."""
        planner.set_dynamics(self.planning_dynamics())
        planner.set_epistemic_weight(self.epistemic.weight)
        if self.value is not None and self.value.model.fitted:
            planner.set_terminal_value(self.value.model)

    def planning_dynamics(self, with_gain: bool | None = None) -> Dynamics:
        """The ensemble as planner dynamics (information gain computed only if the planner uses it)."""
        return self.ensemble.planning_dynamics(self.config.epistemic_weight > 0 if with_gain is None else with_gain)

    def learned_reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """The reward model's prediction (a reward function for :class:`RewardPreference`)."""
        if self.reward_model is None:
            raise NotReadyError("this learner has no reward model (learn_reward=False)")
        return self.reward_model(obs, action, next_obs)

    def extra_state(self) -> dict[str, Any]:
        """State beyond the models' weights (fit count, schedule, value model), for checkpoints."""
        return {"n_fits": self.ensemble.n_fits, "rejected_fits": self.rejected_fits,
                "epistemic": self.epistemic.state_dict(),
                "value": None if self.value is None else self.value.model.state_dict()}

    def load_extra_state(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`extra_state` (``None``: a file from before it existed)."""
        if state is None:
            self.ensemble.n_fits = int(self.n_updates > 0)
            return
        self.ensemble.n_fits, self.rejected_fits = int(state["n_fits"]), int(state["rejected_fits"])
        self.epistemic.load_state_dict(state["epistemic"])
        if self.value is not None and state.get("value") is not None:
            self.value.model.load_state_dict(state["value"])
