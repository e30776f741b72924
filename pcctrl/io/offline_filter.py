"""``filter_bag``: run the PC filter over a bag, write beliefs into an MCAP file (Foxglove) and a PNG."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InvalidArgumentError
from ..estimation import PCFilter
from ._deps import require
from .bag import BagSeries, read_bag
from .messages import FLOAT64_ARRAY, float64_array, matrix_array, msgdef, normalize_type, serialize, typestore
from .model_file import FittedModel


@dataclass
class FilterResult:
    """Belief means ``(T, n)``, covariances ``(T, n, n)``, predicted readings ``(T, p)`` on the bag's grid."""

    stamps_ns: np.ndarray
    means: np.ndarray
    covs: np.ndarray
    predicted_obs: np.ndarray
    rmse: float | None = None
    topics: dict[str, int] = field(default_factory=dict)


def run_filter(fitted: FittedModel, observations: np.ndarray, actions: np.ndarray, progress: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """PC filter (Laplace) over readings ``(T, p)`` (NaN: missing) with actions ``(T, m)``.

    Step 0 corrects the initial belief with the first reading; step ``t`` predicts with the
    action of step ``t - 1`` and corrects with reading ``t``. A missing action is held at the
    last known one (zero before any), as a zero-order-hold actuator would.
    """
    model = fitted.model
    if observations.ndim != 2 or observations.shape[1] != model.obs_dim:
        raise InvalidArgumentError("observations", f"expected shape (T, {model.obs_dim}), got {observations.shape}")
    if actions.shape != (observations.shape[0], model.action_dim):
        raise InvalidArgumentError("actions", f"expected shape ({observations.shape[0]}, {model.action_dim}), "
                                              f"got {actions.shape}")
    filt = PCFilter(model)
    filt.reset(fitted.initial_mean, fitted.initial_cov)
    steps, n = observations.shape[0], model.state_dim
    means, covs = np.empty((steps, n)), np.empty((steps, n, n))
    held = np.zeros(model.action_dim)
    rows = range(steps)
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, desc="filter", unit="step")
    for t in rows:
        y = np.where(np.isfinite(observations[t]), observations[t], np.nan)
        belief = filt.correct(y) if t == 0 else filt.update(y, held)
        means[t], covs[t] = belief.mean.numpy(), belief.cov.numpy()
        if np.isfinite(actions[t]).all():
            held = actions[t].copy()
    return means, covs


def write_mcap(path: str | Path, channels: dict[str, tuple[str, list[tuple[int, bytes]]]]) -> dict[str, int]:
    """Write ``{topic: (msgtype, [(log_ns, cdr bytes), ...])}`` as ROS 2 (ros2msg/cdr) channels of an MCAP file."""
    writer_mod = require("mcap.writer")
    counts = {}
    with open(path, "wb") as fh:
        writer = writer_mod.Writer(fh, compression=writer_mod.CompressionType.NONE)
        writer.start(profile="ros2", library="pcctrl.io")
        schemas: dict[str, int] = {}
        for topic, (msgtype, messages) in channels.items():
            msgtype = normalize_type(msgtype)
            if msgtype not in schemas:
                schemas[msgtype] = writer.register_schema(name=msgtype, encoding="ros2msg",
                                                          data=msgdef(msgtype).encode())
            channel = writer.register_channel(topic=topic, message_encoding="cdr", schema_id=schemas[msgtype])
            for seq, (ns, data) in enumerate(messages):
                writer.add_message(channel_id=channel, log_time=int(ns), data=data, publish_time=int(ns), sequence=seq)
            counts[topic] = len(messages)
        writer.finish()
    return counts


def _raw_messages(bag: Path, topics: list[str]) -> dict[str, tuple[str, list[tuple[int, bytes]]]]:
    highlevel = require("rosbags.highlevel")
    out: dict[str, tuple[str, list[tuple[int, bytes]]]] = {}
    with highlevel.AnyReader([bag], default_typestore=typestore()) as reader:
        conns = [c for c in reader.connections if c.topic in topics]
        for c in conns:
            out.setdefault(c.topic, (c.msgtype, []))
        for c, ns, raw in reader.messages(connections=conns):
            out[c.topic][1].append((int(ns), bytes(raw)))
    return out


def plot_estimates(path: str | Path, series: BagSeries, result: FilterResult, obs: np.ndarray,
                   truth: np.ndarray | None, obs_names: list[str]) -> Path:
    """PNG: each reading with the predicted reading ``g(mean)``; each state entry ``mean ± 2σ`` (and truth)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    p, n = obs.shape[1], result.means.shape[1]
    fig, axes = plt.subplots(p + n, 1, figsize=(9, 1.8 * (p + n)), sharex=True, squeeze=False)
    t = series.times
    for j in range(p):
        ax = axes[j, 0]
        ax.plot(t, obs[:, j], ".", ms=2, color="0.5", label="reading")
        ax.plot(t, result.predicted_obs[:, j], color="C0", lw=1, label="g(belief mean)")
        ax.set_ylabel(obs_names[j] if j < len(obs_names) else f"obs {j}", fontsize=8)
    axes[0, 0].legend(loc="upper right", fontsize=7)
    std = np.sqrt(np.clip(np.diagonal(result.covs, axis1=1, axis2=2), 0, None))
    for i in range(n):
        ax = axes[p + i, 0]
        m = result.means[:, i]
        ax.fill_between(t, m - 2 * std[:, i], m + 2 * std[:, i], color="C1", alpha=0.3, lw=0)
        ax.plot(t, m, color="C1", lw=1, label="belief mean ± 2σ")
        if truth is not None:
            ax.plot(t, truth[:, i], color="k", lw=0.7, ls="--", label="state topic")
        ax.set_ylabel(f"state {i}", fontsize=8)
    axes[p, 0].legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("time since bag start (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def filter_bag(bag: str | Path, fitted: FittedModel, out: str | Path, *, png: str | Path | None = None,
               prefix: str = "/pcctrl", copy_inputs: bool = True, progress: bool = False) -> FilterResult:
    """Filter the bag's readings with ``fitted`` (topics and grid step from its settings); write ``out`` (MCAP).

    New topics (``std_msgs/Float64MultiArray``, one message per grid step, logged at the grid
    time): ``PREFIX/belief/mean`` (n), ``PREFIX/belief/std`` (n), ``PREFIX/belief/cov`` (n x n,
    row-major, layout dims ``rows, cols``) and ``PREFIX/predicted_obs`` (``g(mean)``, p). With
    ``copy_inputs`` the bag's reading, command and state messages are copied unchanged, so
    Foxglove shows estimates beside readings. If the model's state topics are in the bag,
    ``result.rmse`` is the RMSE of the belief mean against them.
    """
    settings = fitted.settings
    try:
        obs_topics, act_topics = list(settings["obs_topics"]), list(settings["action_topics"])
        state_topics, dt = list(settings.get("state_topics", [])), float(settings["dt"])
    except KeyError as exc:
        raise InvalidArgumentError("model", f"the model file has no bag settings ({exc}); "
                                            "make it with pcctrl fit") from exc
    bag = Path(bag)
    highlevel = require("rosbags.highlevel")
    with highlevel.AnyReader([bag], default_typestore=typestore()) as reader:
        present = {c.topic for c in reader.connections}
    state_topics = [s for s in state_topics if s.split(":")[0].split("=")[0] in present]
    series = read_bag(bag, list(dict.fromkeys(obs_topics + act_topics + state_topics)), dt,
                      stamps=settings.get("stamps", "header"), progress=progress)
    obs, actions = series.stack(obs_topics), series.stack(act_topics)
    means, covs = run_filter(fitted, obs, actions, progress=progress)
    with torch.no_grad():
        predicted = fitted.model.observe(torch.as_tensor(means, dtype=fitted.model.dtype)).double().numpy()
    result = FilterResult(series.stamps_ns(), means, covs, predicted)
    truth = None
    if state_topics and len(state_topics) == len(settings.get("state_topics", [])):
        truth = series.stack(state_topics)
        ok = np.isfinite(truth).all(1)
        result.rmse = float(np.sqrt(np.mean((means[ok] - truth[ok]) ** 2))) if ok.any() else None
    stamps = result.stamps_ns.tolist()
    std = np.sqrt(np.clip(np.diagonal(covs, axis1=1, axis2=2), 0, None))
    channels: dict[str, tuple[str, list[tuple[int, bytes]]]] = {
        f"{prefix}/belief/mean": (FLOAT64_ARRAY, [(ns, serialize(float64_array(m))) for ns, m in zip(stamps, means)]),
        f"{prefix}/belief/std": (FLOAT64_ARRAY, [(ns, serialize(float64_array(s))) for ns, s in zip(stamps, std)]),
        f"{prefix}/belief/cov": (FLOAT64_ARRAY, [(ns, serialize(matrix_array(c))) for ns, c in zip(stamps, covs)]),
        f"{prefix}/predicted_obs": (FLOAT64_ARRAY,
                                    [(ns, serialize(float64_array(y))) for ns, y in zip(stamps, predicted)]),
    }
    if copy_inputs:
        topics = list(dict.fromkeys(s.split(":")[0].split("=")[0] for s in obs_topics + act_topics + state_topics))
        channels.update(_raw_messages(bag, topics))
    result.topics = write_mcap(out, channels)
    if png is not None:
        names = [f"{key} {c}" for key in obs_topics for c in series.columns[key]]
        plot_estimates(png, series, result, obs, truth, names)
    return result
