"""Complete pcctrl agents in the Stable-Baselines3 shape, and comparisons with SB3 baselines.

Installed as ``pcctrl.agents``. Names load on first use, so importing the package stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ActiveInferenceAgent": "active_inference",
    "AIFConfig": "aif_config",
    "default_config": "aif_config",
    "ReflexAgent": "reflex_agent",
    "arm_controller": "reflex_agent",
    "arm_joint_goal": "reflex_agent",
    "compare": "comparison",
    "BeliefSpec": "families",
    "CompareError": "comparison",
    "CompareResult": "comparison",
    "register_agent": "registry",
    "unregister_agent": "registry",
    "available_agents": "registry",
    "get_agent": "registry",
    "UnknownAgentError": "registry",
    "AgentUnavailableError": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first use."""
    if name in _EXPORTS:
        value = getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
