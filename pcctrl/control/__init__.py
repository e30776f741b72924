"""Active-inference controllers: reflex (continuous) control, expected-free-energy planning, preferences."""

from .efe_planner import EFEPlanner, known_dynamics
from .goal_prior import GoalPrior
from .objectives import (
    Preference,
    RewardPreference,
    RewardSpec,
    SummedPreference,
    closed_form_reward,
    register_reward,
    registered_rewards,
)
from .protocol import Planner
from .reflex import ReflexController

__all__ = [
    "EFEPlanner",
    "GoalPrior",
    "Planner",
    "Preference",
    "RewardPreference",
    "ReflexController",
    "RewardSpec",
    "SummedPreference",
    "closed_form_reward",
    "known_dynamics",
    "register_reward",
    "registered_rewards",
]
