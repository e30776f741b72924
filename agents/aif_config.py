"""``AIFConfig``: every hyperparameter of ``ActiveInferenceAgent``, with per-env-family defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from numbers import Integral
from typing import Any

from .families import family_overrides

from pcctrl.errors import InvalidArgumentError


@dataclass(frozen=True, kw_only=True)
class AIFConfig:
    """Hyperparameters of :class:`~pcctrl.agents.active_inference.ActiveInferenceAgent`.

    Model: ``members`` PC-trained networks of widths ``hidden``, learning rule ``trainer``
    (``"exact"`` = Z-IL, ``"fpa"``, ``"il"``, ``"ipc"`` or ``"bp"`` for the backprop ablation),
    refitted for ``train_steps`` minibatch steps at every episode end and every ``train_freq``
    env steps once ``learning_starts`` random steps are in the buffer. Planner: EFE by
    ``method`` (``"cem"``/``"mppi"``) over ``horizon`` steps; ``tau`` is the preference
    temperature ``p~ ∝ exp(r/tau)``; ``epistemic_weight`` scales the information gain (0: off).
    ``goal`` with diagonal ``goal_precision`` adds a Gaussian prior preference over the planned
    features to the reward's (``None``: none).
    ``action_repeat`` holds each planned action for that many env steps: the model learns
    ``action_repeat``-step transitions and one planner step spans that many env steps (1: off);
    ``learning_starts`` and ``train_freq`` count env steps.
    """

    members: int = 5
    hidden: tuple[int, ...] = (64, 64)
    trainer: str = "exact"
    T: int | None = None
    x_lr: float | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int = 256
    train_steps: int = 300
    train_freq: int = 200
    learning_starts: int = 200
    buffer_size: int = 1_000_000
    reward_hidden: tuple[int, ...] = (64, 64)
    reward_train_steps: int = 300
    method: str = "cem"
    horizon: int = 20
    candidates: int = 100
    iterations: int = 2
    elites: int = 10
    momentum: float = 0.1
    temperature: float = 1.0
    init_std: float = 0.5
    discount: float = 1.0
    tau: float = 1.0
    epistemic_weight: float = 0.0
    goal: tuple[float, ...] | None = None
    goal_precision: tuple[float, ...] | None = None
    action_repeat: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.action_repeat, bool) or not isinstance(self.action_repeat, Integral) or self.action_repeat < 1:
            raise InvalidArgumentError("action_repeat", f"must be an integer >= 1, got {self.action_repeat!r}")

    def with_overrides(self, **overrides: Any) -> "AIFConfig":
        """A copy with the given fields replaced; unknown names raise ``TypeError``."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown AIFConfig field(s) {unknown}; valid fields: {sorted(names)}")
        return replace(self, **overrides)


def default_config(env_id: str | None = None, **overrides: Any) -> AIFConfig:
    """The defaults for ``env_id``'s family (generic defaults for unknown ids), with overrides."""
    return AIFConfig(**family_overrides(env_id)).with_overrides(**overrides)
