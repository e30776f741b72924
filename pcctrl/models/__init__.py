"""Generative models on the PC core: state-space models (known, linear-Gaussian, learned)."""

from .covariance import Covariance
from .dynamics_ensemble import DynamicsEnsemble
from ..errors import InvalidArgumentError, NonFiniteBeliefError, NotPositiveDefiniteError
from .learned import MLPObservation, MLPTransition, learn_state_space
from .linear_gaussian import LinearGaussianModel
from .mujoco_linear import linearized_mujoco_model
from .normalizer import Normalizer
from .pendulum import PendulumModel, pendulum_model
from .replay import ReplayBuffer
from .reward_model import RewardModel
from .state_space import StateSpaceModel, batched_jacobian

__all__ = [
    "Covariance",
    "DynamicsEnsemble",
    "InvalidArgumentError",
    "LinearGaussianModel",
    "MLPObservation",
    "MLPTransition",
    "Normalizer",
    "NonFiniteBeliefError",
    "NotPositiveDefiniteError",
    "PendulumModel",
    "ReplayBuffer",
    "RewardModel",
    "StateSpaceModel",
    "batched_jacobian",
    "learn_state_space",
    "linearized_mujoco_model",
    "pendulum_model",
]
