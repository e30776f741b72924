"""``make_env``: ``gym.make`` that also knows pcctrl's own ``pcctrl/`` env ids."""

from __future__ import annotations

import importlib

import gymnasium as gym


def make_env(env_id: str) -> gym.Env:
    """``gym.make(env_id)``, importing ``pcctrl.envs`` first for ``pcctrl/`` ids (which registers them)."""
    if env_id.startswith("pcctrl/"):
        importlib.import_module("pcctrl.envs")
    return gym.make(env_id)
