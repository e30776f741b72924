"""``AIFConfig``: every hyperparameter of ``ActiveInferenceAgent``, with per-env-family defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from numbers import Integral
from typing import Any

import gymnasium as gym

from .derived_defaults import derived_overrides
from .families import family_overrides, has_family

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
    ``noise_beta`` colours the search's sampling noise along the horizon (power ``1/f^beta``; 0:
    white, as before; 2: iCEM's red noise, see :class:`~pcctrl.control.EFEPlanner`).
    ``risk_aversion`` (kappa >= 0) scores plans by the members' mean value less kappa times their
    standard deviation, so the search cannot exploit where the ensemble disagrees (0: the mean).
    ``goal`` with diagonal ``goal_precision`` adds a Gaussian prior preference over the planned
    features to the reward's (``None``: none).
    ``action_repeat`` holds each planned action for that many env steps: the model learns
    ``action_repeat``-step transitions and one planner step spans that many env steps (1: off);
    ``learning_starts`` and ``train_freq`` count env steps.

    Validation (:mod:`pcctrl.models.validated_fit`): with ``holdout_fraction > 0`` that share of
    the replay (by a seeded hash of each transition's index) is held out, each refit is
    early-stopped on its NLL (checked every ``validation_every`` steps, ``validation_patience``
    checks without improvement), and a refit worse on it than the current model is discarded.
    ``heteroscedastic`` makes the ensemble's output precision input-dependent.
    ``model_rollout_steps = k > 1`` trains the ensemble on the k-step open-loop rollout loss
    (:mod:`pcctrl.models.rollout_loss`) instead of the one-step loss (1, the default).
    ``epistemic_schedule="disagreement"`` scales ``epistemic_weight`` by the ensemble's measured
    disagreement relative to its peak (see :mod:`pcctrl.agents.epistemic`).
    ``terminal_value`` adds a PC-learned value of the state beyond the horizon to the plans
    (:mod:`pcctrl.agents.terminal_value`), fitted for ``value_train_steps`` steps per refit with
    discount ``value_discount`` per planner step.
    ``belief_samples`` (envs acted on through a PC-filter belief): each ensemble member's plan
    rollout starts from its own draw of the belief, so a plan is scored by its expected cost under
    the posterior rather than at the posterior mean (``False``, the default: certainty
    equivalence, which measured better on NoisyPendulum; docs/agents.md).
    ``compile_planner`` runs the planner's model rollout under ``torch.compile``
    (``EFEPlanner(compile=True)``: same numbers up to float rounding; off by default, because the
    rollout is matmul-bound at the defaults and the first plan then waits for the compiler).
    ``cuda_graph_planner`` replays each planning call as one CUDA graph (``EFEPlanner(cuda_graph=True)``,
    same numbers as eager); ``None``, the default, turns it on for an agent on a CUDA device unless
    ``compile_planner`` is set, where small kernels leave a GPU waiting on launches otherwise.
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
    noise_beta: float = 0.0
    risk_aversion: float = 0.0
    discount: float = 1.0
    tau: float = 1.0
    epistemic_weight: float = 0.0
    goal: tuple[float, ...] | None = None
    goal_precision: tuple[float, ...] | None = None
    action_repeat: int = 1
    holdout_fraction: float = 0.0
    validation_every: int = 50
    validation_patience: int = 2
    heteroscedastic: bool = False
    model_rollout_steps: int = 1
    epistemic_schedule: str = "constant"
    terminal_value: bool = False
    value_hidden: tuple[int, ...] = (64, 64)
    value_train_steps: int = 200
    value_discount: float = 0.95
    belief_samples: bool = False
    compile_planner: bool = False
    cuda_graph_planner: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.action_repeat, bool) or not isinstance(self.action_repeat, Integral) or self.action_repeat < 1:
            raise InvalidArgumentError("action_repeat", f"must be an integer >= 1, got {self.action_repeat!r}")
        if not 0 <= self.holdout_fraction < 1:
            raise InvalidArgumentError("holdout_fraction", f"must be in [0, 1), got {self.holdout_fraction!r}")
        if (isinstance(self.model_rollout_steps, bool) or not isinstance(self.model_rollout_steps, Integral)
                or self.model_rollout_steps < 1):
            raise InvalidArgumentError("model_rollout_steps", f"must be an integer >= 1, got "
                                                              f"{self.model_rollout_steps!r}")
        if self.validation_every < 1 or self.validation_patience < 1:
            raise InvalidArgumentError("validation_every", "validation_every and validation_patience must be >= 1")
        if self.epistemic_schedule not in ("constant", "disagreement"):
            raise InvalidArgumentError("epistemic_schedule", f"must be 'constant' or 'disagreement', got "
                                                             f"{self.epistemic_schedule!r}")
        if not 0 < self.value_discount < 1:
            raise InvalidArgumentError("value_discount", f"must be in (0, 1), got {self.value_discount!r}")

    def with_overrides(self, **overrides: Any) -> "AIFConfig":
        """A copy with the given fields replaced; unknown names raise ``TypeError``."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown AIFConfig field(s) {unknown}; valid fields: {sorted(names)}")
        return replace(self, **overrides)


def default_config(env_id: str | None = None, *, env: gym.Env | None = None, **overrides: Any) -> AIFConfig:
    """The defaults for ``env_id``'s family, with ``overrides``.

    An id with no family entry gets defaults derived from ``env`` (its spaces, time step and
    episode length; :func:`~pcctrl.agents.derived_defaults.derived_overrides`) when ``env`` is
    given, the generic defaults otherwise.
    """
    family = family_overrides(env_id) if has_family(env_id) or env is None else derived_overrides(env)
    return AIFConfig(**family).with_overrides(**overrides)
