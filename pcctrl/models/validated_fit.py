"""Validated refits of a ``DynamicsEnsemble``: early stopping on held-out NLL, never a worse model."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..errors import DivergenceError, InvalidArgumentError, ShapeError
from .dynamics_ensemble import DynamicsEnsemble

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Split(NamedTuple):
    """Transitions ``(obs (n, d), actions (n, a), next_obs (n, d))`` of one side of a split."""

    obs: Tensor
    actions: Tensor
    next_obs: Tensor


class FitReport(NamedTuple):
    """What a validated refit did.

    ``accepted``: the refitted model replaced the previous one. ``previous_nll`` and ``nll``:
    held-out NLL per transition before and after (``nll`` is the kept model's). ``steps``:
    training steps taken before early stopping; ``best_step``: the steps of the kept candidate
    (0: the previous model or the normaliser refit alone). ``losses``: batch NLL per step.
    """

    accepted: bool
    previous_nll: float
    nll: float
    steps: int
    best_step: int
    losses: list[float]


def holdout_mask(indices: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Which transitions (by insertion index) are held out: a stateless hash of ``(seed, index)``.

    The same transition stays on the same side as the buffer grows, and the split depends only on
    ``seed``; about ``fraction`` of the indices are held out.
    """
    if not 0 <= fraction < 1:
        raise InvalidArgumentError("holdout_fraction", f"must be in [0, 1), got {fraction}")
    with np.errstate(over="ignore"):
        z = np.asarray(indices, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53) < fraction


@torch.no_grad()
def held_out_nll(ensemble: DynamicsEnsemble, data: Split) -> float:
    """Mean over transitions of the members' mean Gaussian NLL of ``next_obs`` (raw units, nats)."""
    device = ensemble.device
    obs, actions = data.obs.to(device, torch.float32), data.actions.to(device, torch.float32)
    pred = ensemble.predict(obs, actions)
    target = data.next_obs.to(device, torch.float32).unsqueeze(1)
    nll = 0.5 * (target - pred.mean).square() / pred.var + 0.5 * pred.var.log() + _HALF_LOG_2PI
    return float(nll.sum(-1).mean())


def fit_validated(ensemble: DynamicsEnsemble, train: Split, held_out: Split, steps: int, *,
                  eval_every: int = 50, patience: int = 2, refit_normalizers: bool = True,
                  rollout_steps: int = 1, episode_ends: Tensor | None = None) -> FitReport:
    """Refit ``ensemble`` on ``train`` with early stopping on ``held_out``; keep it only if no worse.

    Candidates are the model every ``eval_every`` training steps (up to ``steps``); training stops
    after ``patience`` evaluations without a better held-out NLL, and the best candidate is kept
    if its held-out NLL is at most the previous model's (for a never-fitted ensemble, always).
    Otherwise, and when training diverges, the previous weights, normalisers and optimizer state
    are restored; a divergence then raises :class:`~pcctrl.errors.DivergenceError`.
    ``rollout_steps`` and ``episode_ends`` (of ``train``'s rows) pass to
    :meth:`DynamicsEnsemble.fit` (k-step rollout loss); the held-out criterion stays one-step.
    """
    if eval_every < 1 or patience < 1 or steps < 0:
        raise InvalidArgumentError("eval_every", f"eval_every and patience must be >= 1 and steps >= 0, got "
                                                 f"{eval_every}, {patience}, {steps}")
    if len(held_out.obs) < 1 or len(train.obs) < 1:
        raise ShapeError("held_out", f"needs at least one train and one held-out transition, got "
                                     f"{len(train.obs)} and {len(held_out.obs)}")
    fitted = ensemble.n_fits > 0
    previous = ensemble.snapshot()
    previous_nll = held_out_nll(ensemble, held_out) if fitted else math.inf
    losses: list[float] = []
    try:
        options = {"rollout_steps": rollout_steps, "episode_ends": episode_ends}
        ensemble.fit(*train, 0, refit_normalizers=refit_normalizers, **options)
        best_nll, best_step, best = held_out_nll(ensemble, held_out), 0, ensemble.snapshot()
        since_best, done = 0, 0
        while done < steps and since_best < patience:
            chunk = min(eval_every, steps - done)
            losses += ensemble.fit(*train, chunk, refit_normalizers=False, **options)
            done += chunk
            nll = held_out_nll(ensemble, held_out)
            if not math.isfinite(nll):
                raise DivergenceError(f"held-out NLL became {nll} after {done} steps")
            if nll < best_nll:
                best_nll, best_step, best, since_best = nll, done, ensemble.snapshot(), 0
            else:
                since_best += 1
    except DivergenceError:
        ensemble.restore(previous)
        raise
    if best_nll <= previous_nll:
        ensemble.restore(best)
        ensemble.n_fits = previous["n_fits"] + 1
        return FitReport(True, previous_nll, best_nll, done, best_step, losses)
    ensemble.restore(previous)
    return FitReport(False, previous_nll, previous_nll, done, best_step, losses)
