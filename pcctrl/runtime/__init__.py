"""Embedding pcctrl controllers in robot loops: step API, deadlines, latency, input policy, export."""

from .checkpoint import load_checkpoint, register_checkpoint_kind, save_checkpoint
from .deadline import StepDeadline
from .export import ExportedController, export
from .filter_planner import FilterPlannerController
from .filter_reflex import FilterReflexController
from .input_policy import sanitize_observation
from .latency import LatencyStats
from .protocol import Controller, Planner
from .realtime import RealtimeController

__all__ = [
    "Controller",
    "ExportedController",
    "FilterPlannerController",
    "FilterReflexController",
    "LatencyStats",
    "Planner",
    "RealtimeController",
    "StepDeadline",
    "export",
    "load_checkpoint",
    "register_checkpoint_kind",
    "sanitize_observation",
    "save_checkpoint",
]
