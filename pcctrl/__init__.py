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

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "NodeShapeError",
    "NonFiniteEnergyError",
    "PCError",
    "PCGraph",
    "PCNetwork",
    "Precision",
    "StepRecord",
    "UnknownNodeError",
    "__version__",
]
