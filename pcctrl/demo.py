"""The built-in demo: PC learning against backprop, and a PC filter on a tracking task."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .core import PCNetwork
from .core.diagnostics import bp_alignment, output_loss


@dataclass(frozen=True)
class LearningResult:
    """Test accuracy per epoch and training wall time of one learner."""

    name: str
    accuracy: list[float]
    seconds: float


def spirals(samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three interleaved noisy spirals in the plane: points and class labels."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(samples) % 3
    radius = torch.rand(samples, generator=gen)
    angle = 4.0 * radius + labels * (2 * math.pi / 3) + 0.2 * torch.randn(samples, generator=gen)
    points = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    return points, labels


def _mlp(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 3))


def compare_learners(seed: int = 0, epochs: int = 40) -> tuple[list[LearningResult], float]:
    """Train one MLP by backprop, by Z-IL and by inference learning; same data, init, order.

    Returns the results and the largest relative error of Z-IL's update against autograd.
    """
    x, y = spirals(1500, seed)
    train, test = slice(0, 1000), slice(1000, None)
    results: list[LearningResult] = []
    alignment_error = float("nan")
    for name in ("backprop", "pc exact", "pc il T=20"):
        model = _mlp(seed)
        net = None
        if name != "backprop":
            net = PCNetwork(model, algorithm="exact" if "exact" in name else "il", T=None if "exact" in name else 20)
        if name == "pc exact":
            assert net is not None
            alignment_error = max(a.relative_error for a in bp_alignment(net, x[:64], y[:64], loss="ce").values())
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        accuracy: list[float] = []
        start = time.perf_counter()
        for epoch in range(epochs):
            order = torch.randperm(1000, generator=torch.Generator().manual_seed(seed + epoch))
            for batch in order.split(50):
                if net is None:
                    optimizer.zero_grad()
                    output_loss(model(x[train][batch]), y[train][batch], "ce").backward()
                    optimizer.step()
                else:
                    net.train_step(x[train][batch], y[train][batch], optimizer, loss="ce")
            with torch.no_grad():
                accuracy.append(float((model(x[test]).argmax(1) == y[test]).float().mean()))
        results.append(LearningResult(name, accuracy, time.perf_counter() - start))
    return results, alignment_error


@dataclass(frozen=True)
class FilterResult:
    """Position RMSE of raw readings and of the PC filters on one tracking episode."""

    rmse: dict[str, float]
    truth: np.ndarray
    readings: np.ndarray
    estimates: dict[str, np.ndarray]


def track(seed: int = 0, steps: int = 200) -> FilterResult:
    """Run ``pcctrl/LinearTracking-v0`` with random forces and filter its noisy readings."""
    import gymnasium as gym

    from . import envs  # noqa: F401  (registers the pcctrl/ ids)
    from .estimation import PCFilter
    from .models import LinearGaussianModel

    env = gym.make("pcctrl/LinearTracking-v0", obs_noise_std=0.3)
    obs, info = env.reset(seed=seed)
    sys = env.unwrapped
    model = LinearGaussianModel(*(torch.as_tensor(m) for m in (sys.A, sys.B, sys.C, sys.Q, sys.R)))
    init_mean, init_cov = torch.as_tensor(sys.initial_mean), torch.as_tensor(sys.initial_cov)
    filters = {"laplace": PCFilter(model), "fixed": PCFilter(model, mode="fixed", prior_precision=_steady_prior_precision(sys))}
    rng = np.random.default_rng(seed)
    truth, readings = [info["state"][:2]], [obs[:2]]
    estimates: dict[str, list[np.ndarray]] = {mode: [] for mode in filters}
    for mode, filt in filters.items():
        filt.reset(init_mean, init_cov)
        estimates[mode].append(filt.correct(torch.as_tensor(obs[:2], dtype=torch.float64)).mean[:2].numpy())
    for _ in range(steps - 1):
        action = rng.uniform(-1.0, 1.0, size=2)
        obs, _, _, _, info = env.step(action.astype(np.float32))
        truth.append(info["state"][:2])
        readings.append(obs[:2])
        for mode, filt in filters.items():
            belief = filt.update(torch.as_tensor(obs[:2], dtype=torch.float64), torch.as_tensor(action))
            estimates[mode].append(belief.mean[:2].numpy())
    true = np.array(truth)
    series = {"raw readings": np.array(readings), **{f"pc filter ({m})": np.array(e) for m, e in estimates.items()}}
    rmse = {name: float(np.sqrt(((values - true) ** 2).sum(1).mean())) for name, values in series.items()}
    return FilterResult(rmse, true, series["raw readings"], {m: np.array(e) for m, e in estimates.items()})


def _steady_prior_precision(sys: object, iterations: int = 500) -> torch.Tensor:
    """Inverse of the Kalman filter's steady-state prior covariance (Riccati iteration).

    Temporal PC's fixed prior precision works when it is set near this value; the model's
    ``Q^-1`` (the default) ignores the uncertainty carried over from the last estimate.
    """
    a, c, q, r = (np.asarray(getattr(sys, n)) for n in ("A", "C", "Q", "R"))
    prior = np.asarray(getattr(sys, "initial_cov"))
    for _ in range(iterations):
        gain = prior @ c.T @ np.linalg.inv(c @ prior @ c.T + r)
        prior = a @ ((np.eye(len(a)) - gain @ c) @ prior) @ a.T + q
    return torch.as_tensor(np.linalg.inv(prior))


def plot(learners: list[LearningResult], tracking: FilterResult, path: Path) -> None:
    """Learning curves and the tracked trajectory, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for result in learners:
        left.plot(range(1, len(result.accuracy) + 1), result.accuracy, label=result.name)
    left.set(xlabel="epoch", ylabel="test accuracy", title="Spirals: PC learning vs backprop")
    left.legend()
    right.plot(*tracking.readings.T, ".", ms=3, color="0.7", label="noisy readings")
    right.plot(*tracking.truth.T, "k-", lw=1.5, label="true position")
    right.plot(*tracking.estimates["laplace"].T, "-", lw=1.2, label="PC filter (laplace)")
    right.plot(*tracking.estimates["fixed"].T, "--", lw=1, label="PC filter (fixed, steady-state precision)")
    right.set(xlabel="x", ylabel="y", title="LinearTracking-v0: PC filter")
    right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_demo(out_dir: Path, seed: int = 0, epochs: int = 40) -> str:
    """Run both parts, write ``demo.png`` into ``out_dir`` and return a markdown report."""
    learners, alignment_error = compare_learners(seed, epochs)
    tracking = track(seed)
    path = out_dir / "demo.png"
    plot(learners, tracking, path)
    lines = ["## PC learning vs backprop (MLP 2-64-64-3, 3-class spirals)", "",
             "| learner | final test accuracy | best | train seconds |", "|---|---|---|---|"]
    for r in learners:
        lines.append(f"| {r.name} | {r.accuracy[-1]:.3f} | {max(r.accuracy):.3f} | {r.seconds:.1f} |")
    lines += ["", f"Z-IL update vs autograd gradient: max relative error {alignment_error:.1e}", "",
              "## PC filter on pcctrl/LinearTracking-v0 (200 steps)", "",
              "| estimate | position RMSE |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in tracking.rmse.items()]
    lines += ["", f"plot: {path}"]
    return "\n".join(lines)
