"""Which preference an ``ActiveInferenceAgent`` plans with, and where its reward comes from."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from pcctrl.control import GoalPrior, RewardPreference, RewardSpec, SummedPreference, closed_form_reward
from pcctrl.control.objectives import Preference
from pcctrl.errors import InvalidArgumentError

from .aif_config import AIFConfig

RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def reward_source(env_id: str | None, reward: RewardSpec | None, goal_prior: GoalPrior | None) -> str:
    """``"custom"``, ``"goal_prior"``, ``"closed_form"`` (registered for the id) or ``"learned"``, in that order."""
    if reward is not None and goal_prior is not None:
        raise InvalidArgumentError("reward", "give either reward or goal_prior, not both")
    if reward is not None:
        return "custom"
    if goal_prior is not None:
        return "goal_prior"
    return "closed_form" if closed_form_reward(env_id) is not None else "learned"


def build_preference(source: str, config: AIFConfig, feature_dim: int, *, env_id: str | None = None,
                     reward: RewardSpec | None = None, goal_prior: GoalPrior | None = None,
                     learned_reward: RewardFn | None = None, device: str | torch.device = "cpu") -> Preference:
    """The planner's preference for ``source``, plus the config's goal prior if it sets one."""
    cfg = config
    if source == "goal_prior":
        assert goal_prior is not None
        return goal_prior.to(device)
    if source == "custom":
        assert reward is not None
        preference: Preference = RewardPreference.from_spec(reward, cfg.tau, cfg.action_repeat)
    elif source == "closed_form":
        spec = closed_form_reward(env_id)
        assert spec is not None
        preference = RewardPreference.from_spec(spec, cfg.tau, cfg.action_repeat)
    else:
        assert learned_reward is not None
        # The reward model learns the summed reward of each (action-repeated) buffer step.
        preference = RewardPreference(learned_reward, cfg.tau)
    if cfg.goal is None:
        return preference
    if cfg.goal_precision is None or len(cfg.goal) != feature_dim or len(cfg.goal_precision) != feature_dim:
        raise InvalidArgumentError("goal", f"config goal and goal_precision need {feature_dim} entries each, "
                                           f"got {cfg.goal} and {cfg.goal_precision}")
    return SummedPreference(preference, GoalPrior(cfg.goal, list(cfg.goal_precision)).to(device))
