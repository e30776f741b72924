"""State estimation by predictive coding: PC filters, belief observation wrappers, memory imputation."""

from .belief import Belief
from .belief_wrapper import BeliefObservation
from .imputation import MemoryImputation
from .imputation_wrapper import ImputedObservation
from .pc_filter import PCFilter
from .perception import Perception

__all__ = ["Belief", "BeliefObservation", "ImputedObservation", "MemoryImputation", "PCFilter", "Perception"]
