"""``ModelLearner``: the agent's models and their data, refitted by the PC core."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from pcctrl.models.dynamics_ensemble import DynamicsEnsemble
from pcctrl.models.replay import ReplayBuffer
from pcctrl.models.reward_model import RewardModel

from .aif_config import AIFConfig

Dynamics = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


class ModelLearner:
    """A PC-trained dynamics ensemble, an optional PC reward model, and the replay buffer they learn from.

    Transitions are over ``feature_dim`` features (observations, or belief features) and
    ``action_dim`` actions; with ``learn_reward`` a :class:`RewardModel` learns the (summed)
    reward of each stored transition. All sizes and rates come from ``config`` by keyword.
    """

    def __init__(self, feature_dim: int, action_dim: int, config: AIFConfig, *, learn_reward: bool = False,
                 device: str | torch.device = "cpu") -> None:
        cfg = config
        self.config, self.device = cfg, torch.device(device)
        self.ensemble = DynamicsEnsemble(feature_dim, action_dim, members=cfg.members, hidden=tuple(cfg.hidden),
                                         trainer=cfg.trainer, T=cfg.T, x_lr=cfg.x_lr, lr=cfg.lr,
                                         weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                                         seed=cfg.seed).to(self.device)
        self.reward_model: RewardModel | None = None
        if learn_reward:
            # The reward model always learns by PC; under the "bp" ablation it uses Z-IL.
            algorithm = "exact" if cfg.trainer == "bp" else cfg.trainer
            self.reward_model = RewardModel(feature_dim, action_dim, tuple(cfg.reward_hidden), algorithm=algorithm,
                                            seed=cfg.seed).to(self.device)
        self.buffer = ReplayBuffer(feature_dim, action_dim, cfg.buffer_size)
        self.n_updates = 0

    def add(self, features: Tensor, action: np.ndarray, next_features: Tensor, reward: float,
            terminated: bool) -> None:
        """Store one transition (features as ``(feature_dim,)`` tensors)."""
        self.buffer.add(features.cpu().numpy(), action, next_features.cpu().numpy(), reward, terminated)

    def fit(self) -> float:
        """Refit the ensemble (and the reward model) on the whole buffer; the last batch NLL."""
        cfg = self.config
        data = self.buffer.all(self.device)
        losses = self.ensemble.fit(data.obs, data.actions, data.next_obs, cfg.train_steps)
        if self.reward_model is not None:
            self.reward_model.fit(data.obs, data.actions, data.next_obs, data.rewards, cfg.reward_train_steps)
        self.n_updates += cfg.train_steps
        return losses[-1] if losses else float("nan")

    def planning_dynamics(self) -> Dynamics:
        """The ensemble as planner dynamics (information gain computed only if the planner uses it)."""
        return self.ensemble.planning_dynamics(self.config.epistemic_weight > 0)

    def learned_reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """The reward model's prediction (a reward function for :class:`RewardPreference`)."""
        if self.reward_model is None:
            raise RuntimeError("this learner has no reward model (learn_reward=False)")
        return self.reward_model(obs, action, next_obs)
