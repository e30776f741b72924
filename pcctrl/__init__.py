"""pcctrl: predictive-coding estimation, active-inference control and PC learning in PyTorch."""

from . import errors
from .core import ALGORITHMS, PCGraph, PCNetwork, Precision, StepRecord
from .errors import (
    CheckpointError,
    DivergenceError,
    InvalidArgumentError,
    NodeShapeError,
    NonFiniteEnergyError,
    NonFiniteError,
    NotReadyError,
    PCError,
    ShapeError,
    UnknownNodeError,
)

from .control import EFEPlanner, GoalPrior, ReflexController
from .estimation import PCFilter
from .models import DynamicsEnsemble, LinearGaussianModel, StateSpaceModel

__version__ = "0.2.0"

__all__ = [
    "ALGORITHMS",
    "CheckpointError",
    "DivergenceError",
    "InvalidArgumentError",
    "NonFiniteError",
    "NotReadyError",
    "ShapeError",
    "errors",
    "DynamicsEnsemble",
    "EFEPlanner",
    "GoalPrior",
    "LinearGaussianModel",
    "NodeShapeError",
    "NonFiniteEnergyError",
    "PCError",
    "PCFilter",
    "PCGraph",
    "PCNetwork",
    "Precision",
    "ReflexController",
    "StateSpaceModel",
    "StepRecord",
    "UnknownNodeError",
    "__version__",
]
