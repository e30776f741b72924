"""Generative models on the PC core: state-space models (known, linear-Gaussian, learned)."""

from .covariance import Covariance
from .errors import InvalidArgumentError, NonFiniteBeliefError, NotPositiveDefiniteError
from .learned import MLPObservation, MLPTransition, learn_state_space
from .linear_gaussian import LinearGaussianModel
from .pendulum import PendulumModel, pendulum_model
from .state_space import StateSpaceModel, batched_jacobian

__all__ = [
    "Covariance",
    "InvalidArgumentError",
    "LinearGaussianModel",
    "MLPObservation",
    "MLPTransition",
    "NonFiniteBeliefError",
    "NotPositiveDefiniteError",
    "PendulumModel",
    "StateSpaceModel",
    "batched_jacobian",
    "learn_state_space",
    "pendulum_model",
]
