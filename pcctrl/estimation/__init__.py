"""State estimation by predictive coding: PC filters and belief observation wrappers."""

from .belief import Belief
from .belief_wrapper import BeliefObservation
from .pc_filter import PCFilter
from .perception import Perception

__all__ = ["Belief", "BeliefObservation", "PCFilter", "Perception"]
