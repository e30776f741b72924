"""The predictive-coding core: energy, value nodes, graphs, inference, local learning."""

from ..errors import NodeShapeError, NonFiniteEnergyError, PCError, UnknownNodeError
from .energy_graph import EnergyGraph, NodeSpec
from .guard import DivergenceGuard
from .inference import Relaxation
from .learning import ALGORITHMS, StepRecord
from .network import PCNetwork
from .pcgraph import PCGraph
from .precision import Precision

__all__ = [
    "ALGORITHMS",
    "DivergenceGuard",
    "EnergyGraph",
    "NodeShapeError",
    "NodeSpec",
    "NonFiniteEnergyError",
    "PCError",
    "PCGraph",
    "PCNetwork",
    "Precision",
    "Relaxation",
    "StepRecord",
    "UnknownNodeError",
]
