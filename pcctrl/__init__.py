"""pcctrl: predictive-coding estimation, active-inference control and PC learning in PyTorch."""

from .core import (
    ALGORITHMS,
    NodeShapeError,
    NonFiniteEnergyError,
    PCError,
    PCGraph,
    PCNetwork,
    Precision,
    StepRecord,
    UnknownNodeError,
)

from .control import EFEPlanner, GoalPrior, ReflexController
from .estimation import PCFilter
from .models import DynamicsEnsemble, LinearGaussianModel, StateSpaceModel

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
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
