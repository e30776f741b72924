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

from .estimation import PCFilter
from .models import LinearGaussianModel, StateSpaceModel

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "LinearGaussianModel",
    "NodeShapeError",
    "NonFiniteEnergyError",
    "PCError",
    "PCFilter",
    "PCGraph",
    "PCNetwork",
    "Precision",
    "StateSpaceModel",
    "StepRecord",
    "UnknownNodeError",
    "__version__",
]
