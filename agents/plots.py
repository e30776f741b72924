"""``curves.png``: evaluation return against training steps, mean ± 95% interval over seeds,
one panel per environment, one line per agent (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .results import Row, curves, default_threshold, t_quantile_975  # noqa: E402


def plot_curves(rows: Iterable[Row], path: Path, thresholds: Mapping[str, float | None] | None = None) -> Path:
    """Draw the learning curves of ``rows`` (``results.csv`` rows) to ``path``; returns ``path``.

    Seeds of an agent share their evaluation steps (same budget and ``eval_every``). The band is
    the 95% t interval of the mean over seeds; with one seed there is no band. A dashed line marks
    the environment's threshold when there is one. The y axis spans the seeds' returns (a few
    seeds give wide t intervals, which are cut there).
    """
    by_key = curves(rows)
    envs = list(dict.fromkeys(env for env, _ in by_key))
    columns = min(3, len(envs))
    figure_rows = math.ceil(len(envs) / columns)
    figure, axes = plt.subplots(figure_rows, columns, figsize=(5.5 * columns, 4 * figure_rows), squeeze=False)
    for index, env in enumerate(envs):
        axis = axes[index // columns][index % columns]
        seen: list[np.ndarray] = []
        for (curve_env, agent), by_seed in by_key.items():
            if curve_env != env:
                continue
            steps = next(iter(by_seed.values()))[0]
            returns = np.stack([values for _, values in by_seed.values()])
            seen.append(returns)
            mean = returns.mean(axis=0)
            (line,) = axis.plot(steps, mean, label=f"{agent} ({len(by_seed)} seeds)")
            if len(by_seed) > 1:
                half = t_quantile_975(len(by_seed) - 1) * returns.std(axis=0, ddof=1) / math.sqrt(len(by_seed))
                axis.fill_between(steps, mean - half, mean + half, color=line.get_color(), alpha=0.2)
        threshold = (thresholds or {}).get(env, default_threshold(env))
        if threshold is not None:
            axis.axhline(threshold, color="grey", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        low, high = min(float(r.min()) for r in seen), max(float(r.max()) for r in seen)
        margin = 0.1 * (high - low) or 1.0
        axis.set_ylim(low - margin, high + margin)
        axis.set_title(env)
        axis.set_xlabel("environment steps")
        axis.set_ylabel("evaluation return")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small", title="mean over seeds, 95% t band", title_fontsize="small")
    for index in range(len(envs), figure_rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
