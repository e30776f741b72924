"""``ZenohNode``: a controller as a Zenoh node: JointState readings in, stamped JointState commands out.

Wire format: ROS 2 CDR (as rmw_zenoh carries it). The node subscribes to ``sub_key`` for
``sensor_msgs/JointState`` readings and publishes on ``pub_key`` a ``sensor_msgs/JointState``
whose ``effort`` is the command and whose ``header.stamp`` is that of the reading it answers.
Per reading (the default) every reading gets exactly one reply, so a robot waiting for its
command never blocks; at a fixed rate every tick sends one. The
policy for bad input is :class:`NodePolicy`; see docs/robots.md for the table.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..runtime import LatencyStats, RealtimeController
from ._deps import require
from .messages import JOINT_STATE, deserialize, joint_state, serialize, stamp_ns

log = logging.getLogger("pcctrl.io.node")


def zenoh_config(listen: Sequence[str] = (), connect: Sequence[str] = (), mode: str = "peer") -> Any:
    """A ``zenoh.Config`` with explicit endpoints only: multicast and gossip scouting off.

    Endpoints look like ``"tcp/127.0.0.1:7447"``; nothing else is listened on or dialled.
    """
    import json

    zenoh = require("zenoh")
    config = zenoh.Config()
    config.insert_json5("mode", json.dumps(mode))
    config.insert_json5("listen/endpoints", json.dumps(list(listen)))
    config.insert_json5("connect/endpoints", json.dumps(list(connect)))
    config.insert_json5("scouting/multicast/enabled", "false")
    config.insert_json5("scouting/gossip/enabled", "false")
    return config


@dataclass
class NodePolicy:
    """What the node does with each kind of bad input (every case logs a line and counts it).

    - malformed message (not CDR JointState, or field lengths that disagree with the names):
      hold (repeat the last command; the safe action before the first one);
    - wrong joint names (one of ``joints`` missing from the message): hold;
    - out-of-order or repeated stamp: hold (the reading is dropped);
    - stale reading (``header.stamp`` older than ``max_age_s`` by the node's clock): safe action;
    - missed deadline (``budget_s`` per step, anytime relaxation stops there): the late
      command is sent (it is the freshest estimate); after ``max_missed`` misses in a row the
      safe action is sent until a step meets its deadline again;
    - controller error (any exception from ``reset``/``step``, e.g. a
      :class:`~pcctrl.errors.NonFiniteError`): safe action; the controller's state is as the error left it.

    NaN or inf joint values are not bad messages: they are missing readings (the filter coasts).
    ``safe_action`` defaults to zeros (no torque). In rate mode a tick without a new reading
    steps the controller on a missing reading while the last one is younger than ``max_age_s``.
    """

    budget_s: float | None = 0.001
    max_age_s: float | None = 0.1
    max_missed: int = 10
    safe_action: Sequence[float] | None = None
    log_every_s: float = 1.0


class _Throttle:
    """Logs the first event of a kind, then at most one line per ``every_s`` with the count since."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.last: dict[str, float] = {}
        self.pending: dict[str, int] = {}

    def warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self.last.get(kind, -np.inf) >= self.every_s:
            extra = self.pending.pop(kind, 0)
            log.warning("%s%s", message, f" (+{extra} more since the last line)" if extra else "")
            self.last[kind] = now
        else:
            self.pending[kind] = self.pending.get(kind, 0) + 1


class ZenohNode:
    """Runs ``controller`` (any :class:`~pcctrl.runtime.Controller`) on JointState readings from Zenoh.

    ``joints``: the joint names whose ``fields`` (default positions) form the reading, in
    this order (the message may list more joints, in any order). ``rate_hz=None`` steps once
    per reading, in Zenoh's callback; a rate steps at that frequency on the newest reading.
    Pass an open ``session`` to share one, or ``config`` (see :func:`zenoh_config`) to open
    one the node owns. ``handle(payload)`` is the whole per-message logic, usable without a network.
    """

    def __init__(self, controller: Any, joints: Sequence[str], sub_key: str, pub_key: str, *,
                 session: Any = None, config: Any = None, policy: NodePolicy | None = None,
                 rate_hz: float | None = None, fields: Sequence[str] = ("position",),
                 command_names: Sequence[str] | None = None, clock_ns: Callable[[], int] = time.time_ns,
                 step_clock: Callable[[], float] = time.perf_counter) -> None:
        if not joints:
            raise InvalidArgumentError("joints", "name at least one joint")
        if rate_hz is not None and not rate_hz > 0:
            raise InvalidArgumentError("rate_hz", f"must be None or > 0, got {rate_hz!r}")
        bad = [f for f in fields if f not in ("position", "velocity", "effort")]
        if bad or not fields:
            raise InvalidArgumentError("fields", f"choose from position, velocity, effort; got {list(fields)}")
        self.policy = policy or NodePolicy()
        if self.policy.max_missed < 1:
            raise InvalidArgumentError("max_missed", f"must be >= 1, got {self.policy.max_missed!r}")
        self.joints, self.fields = list(joints), list(fields)
        self.sub_key, self.pub_key, self.rate_hz = sub_key, pub_key, rate_hz
        self.clock_ns = clock_ns
        self.realtime = RealtimeController(controller, self.policy.budget_s, clock=step_clock)
        self.stats: LatencyStats = self.realtime.stats
        self.handle_stats = LatencyStats()
        self.counts = {k: 0 for k in ("readings", "steps", "malformed", "wrong_joints", "out_of_order", "stale",
                                      "missed", "errors", "safe", "hold", "coast")}
        self.last_status = "none"
        self.command: np.ndarray | None = None
        self.command_names = list(command_names) if command_names is not None else None
        self._safe = None if self.policy.safe_action is None else np.asarray(self.policy.safe_action, dtype=np.float64)
        self._last_stamp: int | None = None
        self._missed_run = 0
        self._started = False
        self._throttle = _Throttle(self.policy.log_every_s)
        self._lock = threading.Lock()
        self._latest: bytes | None = None
        self._new = threading.Event()
        self._stop = threading.Event()
        self._owns_session = session is None
        self._config = config
        self.session = session
        self._pub = self._sub = None

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> ZenohNode:
        """Open the session (unless given), declare the publisher and the subscriber."""
        zenoh = require("zenoh")
        # rosbags builds its CDR (de)serialisers on first use (~0.1 s): do it before the first reading.
        deserialize(serialize(joint_state(0, self.joints, np.zeros(len(self.joints)))), JOINT_STATE)
        if self.session is None:
            self.session = zenoh.open(self._config if self._config is not None else zenoh_config())
        self._pub = self.session.declare_publisher(self.pub_key, express=True)
        callback = self._on_sample_event if self.rate_hz is None else self._on_sample_rate
        self._sub = self.session.declare_subscriber(self.sub_key, callback)
        log.info("pcctrl node: %s -> %s, joints %s, %s", self.sub_key, self.pub_key, self.joints,
                 "per reading" if self.rate_hz is None else f"{self.rate_hz:g} Hz")
        return self

    @property
    def connected(self) -> bool:
        """Whether a subscriber of the commands is reachable (Zenoh's matching status of the publisher)."""
        return self._pub is not None and bool(self._pub.matching_status.matching)

    def __enter__(self) -> ZenohNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop :meth:`spin`, undeclare, and close the session if the node opened it."""
        self._stop.set()
        for entity in (self._sub, self._pub):
            if entity is not None:
                try:
                    entity.undeclare()
                except Exception:  # already undeclared by a closed session
                    pass
        self._sub = self._pub = None
        if self._owns_session and self.session is not None:
            self.session.close()
            self.session = None

    def spin(self, duration_s: float | None = None) -> None:
        """Block until ``duration_s`` passes or :meth:`close`; in rate mode this runs the control ticks."""
        end = None if duration_s is None else time.monotonic() + duration_s
        if self.rate_hz is None:
            while not self._stop.is_set() and (end is None or time.monotonic() < end):
                self._stop.wait(0.05 if end is None else max(0.0, min(0.05, end - time.monotonic())))
            return
        period = 1.0 / self.rate_hz
        next_tick = time.monotonic()
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            next_tick += period
            with self._lock:
                payload, self._latest = self._latest, None
            reply = self.handle(payload) if payload is not None else self.tick_without_reading()
            if reply is not None:
                self._publish(reply)
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_tick = time.monotonic()  # fell behind: do not burst to catch up

    # ---- per message --------------------------------------------------------------------

    def _on_sample_event(self, sample: Any) -> None:
        try:
            reply = self.handle(sample.payload.to_bytes())
        except Exception:  # a bug must not kill Zenoh's callback thread: answer safely and say so
            log.exception("pcctrl node: unexpected error handling a reading on %r; sending the safe action",
                          self.sub_key)
            self.counts["errors"] += 1
            reply = self._reply(self._safe_action(), self.clock_ns(), "safe")
        self._publish(reply)

    def _on_sample_rate(self, sample: Any) -> None:
        with self._lock:
            self._latest = sample.payload.to_bytes()

    def _publish(self, reply: bytes) -> None:
        pub = self._pub
        if pub is not None:
            pub.put(reply)

    def _safe_action(self) -> np.ndarray:
        if self._safe is not None:
            return self._safe
        size = self.command.size if self.command is not None else len(self.command_names or self.joints)
        return np.zeros(size)

    def _reply(self, action: np.ndarray, stamp: int, status: str) -> bytes:
        self.last_status = status
        if status in ("hold", "safe", "coast"):
            self.counts[status] += 1
        names = self.command_names or (self.joints if action.size == len(self.joints)
                                       else [f"a{i}" for i in range(action.size)])
        return serialize(joint_state(stamp, names, effort=action))

    def _hold(self, stamp: int) -> bytes:
        return self._reply(self.command if self.command is not None else self._safe_action(), stamp, "hold")

    def _decode(self, payload: bytes) -> tuple[np.ndarray, int]:
        """Reading and stamp; ``ValueError`` (malformed) or ``KeyError`` (joint names)."""
        msg = deserialize(payload, JOINT_STATE)
        names = list(msg.name)
        index = {n: i for i, n in enumerate(names)}
        missing = [j for j in self.joints if j not in index]
        if missing:
            raise KeyError(f"joints {missing} not in the message's names {names}")
        parts = []
        for fld in self.fields:
            values = np.asarray(getattr(msg, fld), dtype=np.float64)
            if values.size != len(names):
                raise ValueError(f"{fld} has {values.size} values for {len(names)} names")
            parts.append(values[[index[j] for j in self.joints]])
        return np.concatenate(parts), stamp_ns(msg)

    def handle(self, payload: bytes) -> bytes:
        """One reading in, one CDR JointState command out, following :class:`NodePolicy`."""
        start = time.perf_counter()
        with self._lock:
            self.counts["readings"] += 1
            reply = self._handle(payload)
        self.handle_stats.record(time.perf_counter() - start)
        return reply

    def _handle(self, payload: bytes) -> bytes:
        p, key = self.policy, self.sub_key
        now = self.clock_ns()
        try:
            reading, stamp = self._decode(payload)
        except KeyError as exc:
            self.counts["wrong_joints"] += 1
            self._throttle.warn("wrong_joints", f"pcctrl node: wrong joint names on {key!r}: {exc.args[0]}; "
                                                f"holding the last command")
            return self._hold(now)
        except ValueError as exc:
            self.counts["malformed"] += 1
            self._throttle.warn("malformed", f"pcctrl node: malformed message on {key!r}: {exc}; "
                                             "holding the last command")
            return self._hold(now)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            self.counts["out_of_order"] += 1
            self._throttle.warn("out_of_order", f"pcctrl node: reading on {key!r} stamped {stamp} is not newer "
                                                f"than the last one ({self._last_stamp}); dropped, holding")
            return self._hold(stamp)
        if p.max_age_s is not None and (now - stamp) * 1e-9 > p.max_age_s:
            self.counts["stale"] += 1
            self._throttle.warn("stale", f"pcctrl node: stale reading on {key!r}: {(now - stamp) * 1e-6:.1f} ms "
                                         f"old (max {p.max_age_s * 1e3:g} ms); sending the safe action")
            return self._reply(self._safe_action(), stamp, "safe")
        self._last_stamp = stamp
        return self._step(reading, stamp)

    def _step(self, reading: np.ndarray, stamp: int) -> bytes:
        try:
            if not self._started:
                self.realtime.reset(reading)
                self._started = True
            missed_before = self.stats.missed
            action = np.asarray(self.realtime.step(reading), dtype=np.float64).reshape(-1)
        except Exception as exc:  # any controller failure: the robot gets the safe action, the node lives on
            self.counts["errors"] += 1
            self._throttle.warn("error", f"pcctrl node: controller error on {self.sub_key!r}: "
                                         f"{type(exc).__name__}: {exc}; sending the safe action")
            return self._reply(self._safe_action(), stamp, "safe")
        self.counts["steps"] += 1
        self.command = action
        if self.stats.missed > missed_before:
            self.counts["missed"] += 1
            self._missed_run += 1
            late = self.stats.samples[(self.stats.count - 1) % self.stats.samples.size] * 1e6
            if self._missed_run >= self.policy.max_missed:
                self._throttle.warn("missed_run", f"pcctrl node: {self._missed_run} missed deadlines in a row "
                                              f"(last step {late:.0f} µs, budget {self.policy.budget_s * 1e6:.0f} µs);"
                                              " sending the safe action")
                return self._reply(self._safe_action(), stamp, "safe")
            self._throttle.warn("missed", f"pcctrl node: missed the step deadline ({late:.0f} µs, budget "
                                          f"{self.policy.budget_s * 1e6:.0f} µs); sending the late command")
            return self._reply(action, stamp, "late")
        self._missed_run = 0
        return self._reply(action, stamp, "ok")

    def tick_without_reading(self) -> bytes | None:
        """Rate mode, no new reading: coast (step on a missing reading) while the last one is fresh."""
        with self._lock:
            if not self._started or self._last_stamp is None:
                return None
            age = (self.clock_ns() - self._last_stamp) * 1e-9
            if self.policy.max_age_s is not None and age > self.policy.max_age_s:
                self.counts["stale"] += 1
                self._throttle.warn("stale", f"pcctrl node: no reading on {self.sub_key!r} for {age * 1e3:.1f} ms "
                                             f"(max {self.policy.max_age_s * 1e3:g} ms); sending the safe action")
                return self._reply(self._safe_action(), self._last_stamp, "safe")
            reply = self._step(np.full(len(self.joints) * len(self.fields), np.nan), self._last_stamp)
            if self.last_status == "ok":
                self.last_status = "coast"
                self.counts["coast"] += 1
            return reply

    def summary(self) -> str:
        """Step latency (p50/p99/max, missed deadlines), per-message handling latency and the policy counts."""
        s, h = self.stats.summary(), self.handle_stats.summary()
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        return (f"controller step: {s['steps']} steps, p50 {s['p50_us']:.1f} µs, p99 {s['p99_us']:.1f} µs, "
                f"max {s['max_us']:.1f} µs, missed deadlines {s['missed']}\n"
                f"message in -> command out: p50 {h['p50_us']:.1f} µs, p99 {h['p99_us']:.1f} µs, "
                f"max {h['max_us']:.1f} µs\ncounts: {counts or 'none'}")
