"""Gymnasium tasks and sensor wrappers for pcctrl (installed as ``pcctrl.envs``).

Importing this package registers, with Gymnasium:

- ``pcctrl/NoisyPendulum-v0``: Pendulum-v1 dynamics, observes a noisy angle (cos/sin) only.
- ``pcctrl/LinearTracking-v0``: linear-Gaussian 2-D double integrator tracking a reference.
- ``pcctrl/ArmReach-v0``: MuJoCo planar 2-joint torque-controlled arm, noisy encoders.
- ``pcctrl/PartialInvertedPendulum-v0``: InvertedPendulum-v5 observing noisy positions only.

Every env puts its true (noise-free) state in ``info["state"]``. The wrappers live in
:mod:`pcctrl.envs.wrappers`. This package imports nothing else of pcctrl; MuJoCo is
imported only when a MuJoCo env is made.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from gymnasium.envs.registration import register, registry

from .spaces import NaNBox
from .rollout import Rollout, random_rollout
from .wrappers import ActionDelay, ActionNoise, MaskObservation, ObservationDelay, ObservationNoise, SensorDropout

__all__ = [
    "ENV_IDS",
    "register_envs",
    "NoisyPendulumEnv",
    "LinearTrackingEnv",
    "ArmReachEnv",
    "PartialInvertedPendulumEnv",
    "ObservationNoise",
    "MaskObservation",
    "SensorDropout",
    "ObservationDelay",
    "ActionDelay",
    "ActionNoise",
    "NaNBox",
    "Rollout",
    "random_rollout",
]

# id -> (module, class, max_episode_steps)
_ENVS: dict[str, tuple[str, str, int]] = {
    "pcctrl/NoisyPendulum-v0": ("noisy_pendulum", "NoisyPendulumEnv", 200),
    "pcctrl/LinearTracking-v0": ("linear_tracking", "LinearTrackingEnv", 200),
    "pcctrl/ArmReach-v0": ("arm_reach", "ArmReachEnv", 200),
    "pcctrl/PartialInvertedPendulum-v0": ("partial_inverted_pendulum", "PartialInvertedPendulumEnv", 1000),
}
ENV_IDS: tuple[str, ...] = tuple(_ENVS)
_CLASSES = {cls: module for module, cls, _ in _ENVS.values()}


def register_envs() -> None:
    """Register the pcctrl env ids with Gymnasium (idempotent; done on import)."""
    for env_id, (module, cls, steps) in _ENVS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=f"{__name__}.{module}:{cls}", max_episode_steps=steps)


def __getattr__(name: str) -> Any:
    """Import env classes lazily, so MuJoCo loads only when needed."""
    if name in _CLASSES:
        return getattr(import_module(f"{__name__}.{_CLASSES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register_envs()
