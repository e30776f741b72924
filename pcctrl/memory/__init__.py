"""Associative memories: predictive-coding memories and Universal Hopfield Networks, one interface."""

from .base import AssociativeMemory
from .capacity import CapacityCurve, capacity_curve, corrupt, retrieved
from .hopfield import HopfieldMemory, separate, similarity_scores
from .pc_memory import PCMemory

__all__ = [
    "AssociativeMemory",
    "CapacityCurve",
    "HopfieldMemory",
    "PCMemory",
    "capacity_curve",
    "corrupt",
    "retrieved",
    "separate",
    "similarity_scores",
]
