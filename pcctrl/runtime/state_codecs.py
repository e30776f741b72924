"""Checkpoint serializers for classes whose own modules stay free of checkpoint code.

:class:`~pcctrl.estimation.PCFilter` (settings, model and belief) and
:class:`~pcctrl.runtime.LatencyStats` (the recorded ring of step durations), registered with
:func:`pcctrl.runtime.checkpoint.register_checkpoint_kind`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..estimation.pc_filter import PCFilter
from .latency import LatencyStats


def filter_to_data(filt: PCFilter) -> dict[str, Any]:
    """A PC filter's settings, model and current belief (batched or not)."""
    prior = filt.prior_precision
    if prior is not None and not isinstance(prior, torch.Tensor):
        prior = np.asarray(prior, dtype=np.float64)
    belief, n = filt.belief, filt.model.state_dim
    return {"model": filt.model, "mode": filt.mode, "iters": filt.iters, "x_lr": filt.x_lr, "tol": filt.tol,
            "max_halvings": filt.max_halvings, "prior_precision": prior, "batched": filt.batch_size is not None,
            "divergence_factor": filt.divergence_factor, "small_path": filt.small_path,
            "mean": belief.mean.detach().clone().reshape(-1, n),
            "cov": belief.cov.detach().clone().reshape(-1, n, n)}


def filter_from_data(data: dict[str, Any]) -> PCFilter:
    """Rebuild :func:`filter_to_data`'s filter; the belief is validated, then restored bit for bit."""
    filt = PCFilter(data["model"], mode=data["mode"], iters=data["iters"], x_lr=data["x_lr"], tol=data["tol"],
                    prior_precision=data["prior_precision"], max_halvings=data["max_halvings"],
                    divergence_factor=data.get("divergence_factor", 1e6), small_path=data.get("small_path", True))
    mean, cov = data["mean"], data["cov"]
    if not isinstance(mean, torch.Tensor) or not isinstance(cov, torch.Tensor) or mean.ndim != 2 or cov.ndim != 3:
        raise ValueError("the belief must be a (batch, n) mean and a (batch, n, n) covariance")
    if data["batched"]:
        filt.restore(mean, cov)
    else:
        filt.restore(mean[0], cov[0])
    return filt


def stats_to_data(stats: LatencyStats) -> dict[str, Any]:
    """Capacity, counters and the durations still held."""
    return {"capacity": int(stats._buf.size), "count": stats.count, "missed": stats.missed,
            "samples": stats._buf[:min(stats.count, stats._buf.size)].copy()}


def stats_from_data(data: dict[str, Any]) -> LatencyStats:
    """Rebuild :func:`stats_to_data`'s statistics."""
    stats = LatencyStats(int(data["capacity"]))
    samples = np.asarray(data["samples"], dtype=np.float64)
    count, missed = int(data["count"]), int(data["missed"])
    if samples.shape != (min(count, stats._buf.size),) or not 0 <= missed <= count:
        raise ValueError("the recorded samples do not match the counters")
    stats._buf[:samples.size] = samples
    stats.count, stats.missed = count, missed
    return stats
