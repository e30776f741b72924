"""``fit_bag``: learn a state-space model from a bag by the PC core, with held-out prediction errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import InvalidArgumentError
from ..models import learn_state_space
from .bag import BagSeries, TopicSpec, read_bag
from .mlp_model import MLPStateSpaceModel
from .model_file import FittedModel


def segments(valid: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the runs of true entries (``stop`` exclusive)."""
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return list(zip(np.nonzero(edges == 1)[0].tolist(), np.nonzero(edges == -1)[0].tolist()))


def _runs(states: np.ndarray, observations: np.ndarray, actions: np.ndarray, lo: int, hi: int
          ) -> list[tuple[int, int]]:
    """Runs ``[a, b]`` (inclusive ends) inside ``[lo, hi)`` with complete rows at ``a..b`` and actions at ``a..b-1``."""
    here = np.isfinite(states).all(1) & np.isfinite(observations).all(1)
    act = np.isfinite(actions).all(1)
    out = []
    for start, stop in segments(here[lo:hi]):
        start, stop = start + lo, stop + lo
        t = start
        while t < stop - 1:  # split where an action is missing
            u = t
            while u < stop - 1 and act[u]:
                u += 1
            if u > t:
                out.append((t, u))
            t = u + 1
    return out


def windows(states: np.ndarray, actions: np.ndarray, observations: np.ndarray, runs: list[tuple[int, int]],
            length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut runs into windows of ``length`` transitions: ``(E, L+1, n)``, ``(E, L, m)``, ``(E, L+1, p)``."""
    starts = [a + i * length for a, b in runs for i in range((b - a) // length)]
    if not starts:
        raise InvalidArgumentError("bag", f"no stretch of {length} consecutive complete steps; lower --window "
                                          "or check the topics")
    idx = np.asarray(starts)[:, None] + np.arange(length + 1)
    return states[idx], actions[idx[:, :-1]], observations[idx]


@dataclass
class FitReport:
    """Held-out errors of a fitted model (state units): one-step, k-step (open loop), observation."""

    train_transitions: int
    val_transitions: int
    one_step_rmse: float
    persistence_rmse: float
    k: int
    k_step_rmse: float
    k_persistence_rmse: float
    obs_rmse: float
    obs_noise_std: float
    per_dim_one_step: list[float] = field(default_factory=list)

    def table(self) -> str:
        """Markdown table of the errors beside the do-nothing (persistence) baseline."""
        return ("| held-out error (RMSE) | model | persistence s(t+k) = s(t) |\n|---|---|---|\n"
                f"| one-step state | {self.one_step_rmse:.5g} | {self.persistence_rmse:.5g} |\n"
                f"| {self.k}-step state (open loop) | {self.k_step_rmse:.5g} | {self.k_persistence_rmse:.5g} |\n"
                f"| reading vs g(state) | {self.obs_rmse:.5g} | (noise std from R: {self.obs_noise_std:.5g}) |\n"
                f"transitions: {self.train_transitions} train, {self.val_transitions} held out")


@torch.no_grad()
def evaluate(model: Any, states: np.ndarray, actions: np.ndarray, observations: np.ndarray,
             runs: list[tuple[int, int]], k: int) -> FitReport:
    """Prediction errors of ``model`` on the runs (``train_transitions`` left 0)."""
    dtype = model.dtype
    one, base, kerr, kbase, oerr = [], [], [], [], []
    for a, b in runs:
        s = torch.as_tensor(states[a:b + 1], dtype=dtype)
        u = torch.as_tensor(actions[a:b], dtype=dtype)
        pred = model.transition(s[:-1], u)
        one.append((pred - s[1:]).numpy())
        base.append((s[:-1] - s[1:]).numpy())
        oerr.append((model.observe(s) - torch.as_tensor(observations[a:b + 1], dtype=dtype)).numpy())
        if b - a >= k:
            roll = s[:b - a - k + 1]
            for j in range(k):
                roll = model.transition(roll, u[j:j + roll.shape[0]])
            kerr.append((roll - s[k:]).numpy())
            kbase.append((s[:b - a - k + 1] - s[k:]).numpy())
    if not one:
        raise InvalidArgumentError("bag", "no held-out transitions: raise --val-fraction or record longer")
    one_a, base_a, obs_a = np.concatenate(one), np.concatenate(base), np.concatenate(oerr)

    def rmse(x: list[np.ndarray]) -> float:
        return float(np.sqrt(np.mean(np.concatenate(x) ** 2))) if x else float("nan")

    r = model.obs_cov().detach().double().numpy()
    return FitReport(0, one_a.shape[0], rmse([one_a]), rmse([base_a]), k, rmse(kerr), rmse(kbase), rmse([obs_a]),
                     float(np.sqrt(np.mean(np.diag(r)))), np.sqrt((one_a ** 2).mean(0)).tolist())


def fit_bag(bag: str | Path, state: Sequence[str], obs: Sequence[str], action: Sequence[str], dt: float, *,
            val_fraction: float = 0.2, window: int = 20, k: int = 10, hidden: int = 32, epochs: int = 40,
            batch_size: int = 64, lr: float = 3e-3, algorithm: str = "exact", seed: int = 0,
            stamps: Literal["header", "log"] = "header", progress: bool = False,
            series: BagSeries | None = None) -> tuple[FittedModel, FitReport]:
    """Learn ``f``, ``g``, ``Q``, ``R`` from the bag: train on the first ``1 - val_fraction`` of its time.

    ``state`` topics give the state the model tracks (e.g. joint positions and velocities, or a
    motion-capture pose), ``obs`` the sensor readings the filter will see, ``action`` the
    commands; all are resampled to ``dt`` and the action at step ``t`` is the one applied from
    ``t`` to ``t + 1``. Learning is :func:`pcctrl.models.learn_state_space` (PC core, float64)
    on windows of ``window`` consecutive complete steps; the report holds held-out one-step and
    ``k``-step prediction errors. The initial belief is the mean and covariance of the training states.
    """
    if not 0 < val_fraction < 1:
        raise InvalidArgumentError("val_fraction", f"must be in (0, 1), got {val_fraction!r}")
    for name, value in (("window", window), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(name, f"must be an integer >= 1, got {value!r}")
    specs = {"state": [str(TopicSpec.parse(s)) for s in state], "obs": [str(TopicSpec.parse(s)) for s in obs],
             "action": [str(TopicSpec.parse(s)) for s in action]}
    if not specs["state"] or not specs["obs"] or not specs["action"]:
        raise InvalidArgumentError("topics", "fit needs at least one state, one obs and one action topic")
    if series is None:
        series = read_bag(bag, list(dict.fromkeys(specs["state"] + specs["obs"] + specs["action"])), dt,
                          stamps=stamps, progress=progress)
    S, Y, A = (series.stack(specs[n]) for n in ("state", "obs", "action"))
    split = int(round(S.shape[0] * (1 - val_fraction)))
    train_runs = _runs(S, Y, A, 0, split)
    val_runs = _runs(S, Y, A, split, S.shape[0])
    s_w, a_w, o_w = windows(S, A, Y, train_runs, window)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2, desc="fit", unit="stage")
        bar.set_postfix_str(f"PC learning on {s_w.shape[0] * window} transitions")
    model = MLPStateSpaceModel.wrap(learn_state_space(s_w, a_w, o_w, hidden=hidden, epochs=epochs,
                                                      batch_size=batch_size, lr=lr, algorithm=algorithm,
                                                      seed=seed, dtype=torch.float64))
    if bar is not None:
        bar.update(1)
        bar.set_postfix_str("held-out errors")
    report = evaluate(model, S, A, Y, val_runs, k)
    report.train_transitions = int(s_w.shape[0] * window)
    if bar is not None:
        bar.update(1)
        bar.close()
    flat = s_w.reshape(-1, S.shape[1])
    mean = flat.mean(0)
    cov = np.cov(flat.T).reshape(S.shape[1], S.shape[1]) + 1e-6 * np.eye(S.shape[1])
    settings = {"dt": float(dt), "stamps": stamps, "state_topics": specs["state"], "obs_topics": specs["obs"],
                "action_topics": specs["action"], "bag": str(bag), "seed": seed, "epochs": epochs,
                "columns": {key: list(series.columns[key]) for key in series.columns},
                "report": {k_: v for k_, v in report.__dict__.items()}}
    return FittedModel(model, mean, cov, settings), report
