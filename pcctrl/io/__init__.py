"""Robot pipelines: ROS 2 bags in, PC-filter estimates out (MCAP), and a live controller node over Zenoh.

Needs the ``[ros]`` extra (``rosbags``, ``mcap``, ``eclipse-zenoh``): ``pip install 'pcctrl[ros]'``.
Importing this package does not import them; each function does when called, and a missing
one raises an ``ImportError`` that says how to install it. See ``docs/robots.md``.
"""

from ._deps import require
from .bag import BagSeries, BagWriter, TopicSpec, read_bag
from .fit import FitReport, fit_bag
from .model_file import FittedModel, load_model, save_model
from .offline_filter import FilterResult, filter_bag, run_filter, write_mcap
from .record import record_rollout
from .zenoh_node import NodePolicy, ZenohNode, zenoh_config

__all__ = [
    "BagSeries",
    "BagWriter",
    "FilterResult",
    "FitReport",
    "FittedModel",
    "NodePolicy",
    "TopicSpec",
    "ZenohNode",
    "filter_bag",
    "fit_bag",
    "load_model",
    "read_bag",
    "record_rollout",
    "require",
    "run_filter",
    "save_model",
    "write_mcap",
    "zenoh_config",
]
