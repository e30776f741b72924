"""ROS 2 bags (MCAP or sqlite3 rosbag2) in as arrays on a fixed time grid, NaN where a sample is missing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import InvalidArgumentError
from ._deps import require
from .messages import FIELDS, HAS_HEADER, field_values, normalize_type, stamp_ns, typestore


@dataclass(frozen=True)
class TopicSpec:
    """``TOPIC[:FIELD][=COL,COL...]``: which topic, which field of its message, which columns.

    Fields per type: JointState ``position`` (default), ``velocity``, ``effort`` (columns: joint
    names, default those of the first message); Imu ``orientation``, ``angular_velocity``,
    ``linear_acceleration``; PoseStamped ``position``, ``orientation``; TwistStamped ``linear``,
    ``angular`` (columns ``x, y, z[, w]``); Float64MultiArray ``data`` (columns ``0, 1, ...``).
    Without ``:FIELD`` the type's first field is read.
    """

    topic: str
    field: str | None = None
    columns: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, text: str | TopicSpec) -> TopicSpec:
        """Read a spec such as ``/joint_states:velocity=shoulder,elbow``."""
        if isinstance(text, TopicSpec):
            return text
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgumentError("topic", f"expected 'TOPIC[:FIELD][=COL,...]', got {text!r}")
        body, _, cols = text.strip().partition("=")
        topic, _, fld = body.partition(":")
        columns = tuple(c.strip() for c in cols.split(",")) if cols else None
        if not topic or (columns is not None and not all(columns)):
            raise InvalidArgumentError("topic", f"expected 'TOPIC[:FIELD][=COL,...]', got {text!r}")
        return cls(topic, fld or None, columns)

    def __str__(self) -> str:
        text = self.topic + (f":{self.field}" if self.field else "")
        return text + (f"={','.join(self.columns)}" if self.columns else "")


@dataclass
class BagSeries:
    """Topics of one bag resampled to ``times`` (seconds after ``start_ns``, step ``dt``).

    ``arrays[spec]`` has shape ``(steps, columns)`` with NaN where no sample fell within
    ``dt / 2`` of the grid point; ``columns[spec]`` names the columns; ``counts[spec]`` is the
    number of messages read; ``kept[spec]`` how many of them landed on the grid (the nearest one
    per grid point wins when several fall in the same bin).
    """

    start_ns: int
    dt: float
    times: np.ndarray
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    msgtypes: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)

    def stack(self, specs: Sequence[str | TopicSpec]) -> np.ndarray:
        """The arrays of ``specs`` side by side, ``(steps, total columns)``."""
        keys = [str(TopicSpec.parse(s)) for s in specs]
        missing = [k for k in keys if k not in self.arrays]
        if missing:
            raise InvalidArgumentError("specs", f"not read: {missing}; have {list(self.arrays)}")
        return np.concatenate([self.arrays[k] for k in keys], axis=1)

    def stamps_ns(self) -> np.ndarray:
        """Grid times in nanoseconds (the bag's clock)."""
        return self.start_ns + np.round(self.times * 1e9).astype(np.int64)


def _resolve_field(spec: TopicSpec, msgtype: str) -> str:
    fields = FIELDS.get(msgtype)
    if fields is None:
        raise InvalidArgumentError("topic", f"{spec.topic} has type {msgtype}; pcctrl.io reads "
                                            f"{sorted(FIELDS)}")
    name = spec.field or next(iter(fields))
    if name not in fields:
        raise InvalidArgumentError("topic", f"{msgtype} has no field {name!r}; choose from {list(fields)}")
    return name


def _gather(samples: list[tuple[int, np.ndarray, tuple[str, ...]]], columns: tuple[str, ...] | None
            ) -> tuple[list[int], np.ndarray, tuple[str, ...]]:
    """Samples as rows over ``columns`` (by name; a column a message lacks is NaN)."""
    if columns is None:
        columns = samples[0][2] if samples else ()
    index = {name: i for i, name in enumerate(columns)}
    rows = np.full((len(samples), len(columns)), np.nan)
    for r, (_, values, names) in enumerate(samples):
        for name, value in zip(names, values):
            i = index.get(name)
            if i is not None:
                rows[r, i] = value
    return [s[0] for s in samples], rows, columns


def read_bag(path: str | Path, topics: Sequence[str | TopicSpec], dt: float, *,
             stamps: Literal["header", "log"] = "header", start_ns: int | None = None,
             stop_ns: int | None = None, progress: bool = False) -> BagSeries:
    """Read ``topics`` of the bag at ``path`` into arrays on a grid of step ``dt`` seconds.

    ``stamps="header"`` times each message by its ``header.stamp`` (types without a header,
    such as Float64MultiArray, by the bag's log time); ``"log"`` uses the log time for all.
    Samples may come in any order; each lands on the nearest grid point, within ``dt / 2``.
    The grid runs from the earliest to the latest sample of the chosen topics unless
    ``start_ns`` / ``stop_ns`` are given. ``path`` is a rosbag2 folder or an ``.mcap`` file.
    """
    anyreader = require("rosbags.highlevel")
    if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
        raise InvalidArgumentError("dt", f"must be a finite number > 0, got {dt!r}")
    if stamps not in ("header", "log"):
        raise InvalidArgumentError("stamps", f"must be 'header' or 'log', got {stamps!r}")
    specs = [TopicSpec.parse(t) for t in topics]
    if not specs:
        raise InvalidArgumentError("topics", "name at least one topic")
    path = Path(path)
    if not path.exists():
        raise InvalidArgumentError("path", f"{path} does not exist")
    samples: dict[str, list[tuple[int, np.ndarray, tuple[str, ...]]]] = {str(s): [] for s in specs}
    msgtypes: dict[str, str] = {}
    with anyreader.AnyReader([path], default_typestore=typestore()) as reader:
        by_topic = {c.topic: c for c in reader.connections}
        missing = sorted({s.topic for s in specs} - set(by_topic))
        if missing:
            raise InvalidArgumentError("topics", f"{missing} not in the bag; it has {sorted(by_topic)}")
        wanted: dict[str, list[tuple[str, str]]] = {}
        for spec in specs:
            msgtype = normalize_type(by_topic[spec.topic].msgtype)
            wanted.setdefault(spec.topic, []).append((str(spec), _resolve_field(spec, msgtype)))
            msgtypes[str(spec)] = msgtype
        connections = [c for c in reader.connections if c.topic in wanted]
        messages = reader.messages(connections=connections)
        if progress:
            from tqdm.auto import tqdm

            messages = tqdm(messages, total=sum(c.msgcount for c in connections), desc="reading bag", unit="msg")
        for connection, log_ns, raw in messages:
            msgtype = normalize_type(connection.msgtype)
            msg = reader.deserialize(raw, connection.msgtype)
            t = stamp_ns(msg) if stamps == "header" and msgtype in HAS_HEADER else int(log_ns)
            for key, fld in wanted[connection.topic]:
                values, names = field_values(msg, msgtype, fld)
                samples[key].append((t, values, names))
    firsts = [min(s[0] for s in v) for v in samples.values() if v]
    lasts = [max(s[0] for s in v) for v in samples.values() if v]
    if not firsts and (start_ns is None or stop_ns is None):
        raise InvalidArgumentError("topics", "the chosen topics have no messages")
    t0 = int(start_ns) if start_ns is not None else min(firsts)
    t1 = int(stop_ns) if stop_ns is not None else max(lasts)
    if t1 < t0:
        raise InvalidArgumentError("stop_ns", f"is before start_ns ({t1} < {t0})")
    dt_ns = dt * 1e9
    steps = int(np.floor((t1 - t0) / dt_ns + 0.5)) + 1
    series = BagSeries(start_ns=t0, dt=float(dt), times=np.arange(steps) * float(dt), msgtypes=msgtypes)
    for spec in specs:
        key = str(spec)
        times, rows, columns = _gather(samples[key], spec.columns)
        out = np.full((steps, len(columns)), np.nan)
        best = np.full(steps, np.inf)
        kept = 0
        for t, row in zip(times, rows):
            offset = (t - t0) / dt_ns
            k = int(np.floor(offset + 0.5))
            if not 0 <= k < steps:
                continue
            distance = abs(offset - k)
            if distance < best[k]:
                kept += np.isinf(best[k])
                best[k] = distance
                out[k] = row
        series.arrays[key], series.columns[key] = out, columns
        series.counts[key], series.kept[key] = len(times), int(kept)
    return series


class BagWriter:
    """Writes typed ROS 2 messages into a new rosbag2 (``storage="mcap"`` or ``"sqlite3"``).

    ``write(topic, msg, log_ns)`` registers the topic with the message's type on first use.
    Use as a context manager; ``path`` must not exist yet (rosbags never overwrites).
    """

    def __init__(self, path: str | Path, storage: Literal["mcap", "sqlite3"] = "mcap") -> None:
        rosbag2 = require("rosbags.rosbag2")
        plugins = {"mcap": rosbag2.StoragePlugin.MCAP, "sqlite3": rosbag2.StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise InvalidArgumentError("storage", f"must be 'mcap' or 'sqlite3', got {storage!r}")
        self.path = Path(path)
        self._writer = rosbag2.Writer(self.path, version=9, storage_plugin=plugins[storage])
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def write(self, topic: str, msg: Any, log_ns: int) -> None:
        """Serialise ``msg`` (CDR) and append it to ``topic`` at bag time ``log_ns``."""
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msg.__msgtype__, typestore=typestore())
            self._connections[topic] = connection
        self._writer.write(connection, int(log_ns), typestore().serialize_cdr(msg, msg.__msgtype__))
        self.counts[topic] = self.counts.get(topic, 0) + 1
