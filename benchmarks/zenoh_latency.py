"""Round trip sensor -> command over Zenoh on 127.0.0.1 at 1 kHz, against the in-process step as the floor.

Usage: python benchmarks/zenoh_latency.py [--seconds 10] [--rate 1000] [--threads 1]

The controller is the ArmReach filter + reflex at 1 kHz exported to ONNX (the served path of
``pcctrl serve``). The robot side (this process) publishes ROS 2 CDR JointState readings at
``--rate`` on an absolute schedule and times each command that comes back, matched by the
header stamp it carries. Rows:

- in-process ``controller.step`` (the floor), and ``ZenohNode.handle`` (decode + step + encode, no network);
- ``pcctrl serve`` in a separate process (the deployment shape);
- a ZenohNode in this process, second Zenoh session (one GIL shared by robot and node);
- a Zenoh echo in a separate process (replies with the reading's bytes: the transport floor).

"missed" is the fraction of readings whose command came back later than one period (or never).
"""

from __future__ import annotations

import argparse
import logging
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pcctrl.agents import arm_controller
from pcctrl.io import NodePolicy, ZenohNode, zenoh_config
from pcctrl.io.messages import JOINT_STATE, deserialize, joint_state, serialize, stamp_ns
from pcctrl.runtime import ExportedController, LatencyStats, export

JOINTS = ["shoulder", "elbow"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readings(count: int, seed: int = 0) -> np.ndarray:
    """Encoder readings of a slow reach with 1 mrad noise."""
    t = np.arange(count) * 1e-3
    rng = np.random.default_rng(seed)
    return np.stack([0.4 * (1 - np.exp(-t)), -0.6 * (1 - np.exp(-t))], 1) + 1e-3 * rng.standard_normal((count, 2))


def floor_rows(path: Path, ys: np.ndarray) -> list[tuple[str, LatencyStats]]:
    """In-process step and node handling (no network) on the same readings."""
    ctrl = ExportedController(path)
    ctrl.reset(ys[0])
    step = LatencyStats()
    for y in ys:
        start = time.perf_counter()
        ctrl.step(y)
        step.record(time.perf_counter() - start)
    node = ZenohNode(ExportedController(path), JOINTS, "x", "y", policy=NodePolicy(budget_s=None, max_age_s=None))
    base = time.time_ns()
    payloads = [serialize(joint_state(base + i, JOINTS, y)) for i, y in enumerate(ys)]
    handle = LatencyStats()
    for p in payloads:
        start = time.perf_counter()
        node.handle(p)
        handle.record(time.perf_counter() - start)
    return [("in-process controller.step (floor)", step), ("in-process ZenohNode.handle (CDR in/out, no network)",
                                                           handle)]


class Robot:
    """Publishes readings at a fixed rate and records the round trip of every command."""

    def __init__(self, endpoint: str) -> None:
        import zenoh

        self.session = zenoh.open(zenoh_config(connect=[endpoint]))
        self.sent: dict[int, float] = {}
        self.rtt: dict[int, float] = {}
        self.sub = self.session.declare_subscriber("bench/command", self._on)
        self.pub = self.session.declare_publisher("bench/joint_states", express=True)

    def _on(self, sample) -> None:
        now = time.perf_counter()
        stamp = stamp_ns(deserialize(sample.payload.to_bytes(), JOINT_STATE))
        sent = self.sent.get(stamp)
        if sent is not None and stamp not in self.rtt:
            self.rtt[stamp] = now - sent

    def wait_ready(self, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while not self.pub.matching_status.matching:
            if time.monotonic() > end:
                raise RuntimeError("no node subscribed to bench/joint_states")
            time.sleep(0.02)
        # One reading answered proves the way back too.
        while not self.rtt:
            self.send(np.zeros(2))
            time.sleep(0.05)
            if time.monotonic() > end:
                raise RuntimeError("no command came back")
        self.sent.clear()
        self.rtt.clear()

    def send(self, y: np.ndarray) -> None:
        stamp = time.time_ns()
        payload = serialize(joint_state(stamp, JOINTS, y))
        self.sent[stamp] = time.perf_counter()
        self.pub.put(payload)

    def run(self, ys: np.ndarray, rate: float) -> tuple[LatencyStats, float]:
        period = 1.0 / rate
        start = time.perf_counter() + 0.01
        for k, y in enumerate(ys):
            delay = start + k * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.send(y)
        time.sleep(0.5)  # let the last commands arrive
        stats = LatencyStats(capacity=len(ys))
        late = 0
        for stamp in self.sent:
            rtt = self.rtt.get(stamp)
            if rtt is None:
                late += 1
                continue
            stats.record(rtt, rtt > period)
            late += rtt > period
        return stats, late / len(self.sent)

    def close(self) -> None:
        self.session.close()


def echo_server(endpoint: str, seconds: float) -> None:
    """Republish every reading's bytes unchanged on bench/command (run with --echo-server)."""
    import zenoh

    session = zenoh.open(zenoh_config(listen=[endpoint]))
    pub = session.declare_publisher("bench/command", express=True)
    sub = session.declare_subscriber("bench/joint_states", lambda sample: pub.put(sample.payload.to_bytes()))
    time.sleep(seconds)
    sub.undeclare()
    session.close()


def served_in_subprocess(path: Path | None, ys: np.ndarray, rate: float, threads: int
                         ) -> tuple[LatencyStats, float, str]:
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    seconds = len(ys) / rate
    if path is None:
        command = [sys.executable, __file__, "--echo-server", endpoint, "--seconds", str(seconds + 40)]
    else:
        command = [sys.executable, "-m", "pcctrl", "serve", str(path), "--sub", "bench/joint_states",
                   "--pub", "bench/command", "--joints", ",".join(JOINTS), "--listen", endpoint,
                   "--duration", str(seconds + 40), "--budget-us", str(1e6 / rate), "--max-age-ms", "1000",
                   "--threads", str(threads)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    robot = None
    try:
        for _ in range(300):
            try:
                robot = Robot(endpoint)
                break
            except Exception:  # the node is still starting: nothing listens yet
                time.sleep(0.1)
        if robot is None:
            raise RuntimeError("could not connect to the node")
        robot.wait_ready()
        stats, missed = robot.run(ys, rate)
    finally:
        if robot is not None:
            robot.close()
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    node_line = next((line for line in out.splitlines() if line.startswith("controller step:")), "")
    return stats, missed, node_line


def served_in_process(path: Path, ys: np.ndarray, rate: float) -> tuple[LatencyStats, float, str]:
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    node = ZenohNode(ExportedController(path), JOINTS, "bench/joint_states", "bench/command",
                     config=zenoh_config(listen=[endpoint]), policy=NodePolicy(budget_s=1.0 / rate, max_age_s=1.0))
    node.start()
    robot = Robot(endpoint)
    try:
        robot.wait_ready()
        node.stats.reset()
        stats, missed = robot.run(ys, rate)
    finally:
        robot.close()
        node.close()
    return stats, missed, node.summary().splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in both processes (default 1)")
    parser.add_argument("--echo-server", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        echo_server(args.echo_server, args.seconds)
        return
    torch.set_num_threads(args.threads)
    logging.getLogger("pcctrl.io.node").setLevel(logging.ERROR)  # misses are counted in the table instead
    ys = readings(int(round(args.seconds * args.rate)))
    with tempfile.TemporaryDirectory() as folder:
        path = export(arm_controller(1.0 / args.rate, goal=(0.4, -0.6)), Path(folder) / "arm.onnx")
        rows = [(name, s, float(s.missed) / max(s.count, 1), "") for name, s in floor_rows(path, ys)]
        for name, fn in (("pcctrl serve (separate process) over Zenoh", lambda: served_in_subprocess(
                path, ys, args.rate, args.threads)),
                         ("ZenohNode in the robot's process, 2nd session", lambda: served_in_process(
                             path, ys, args.rate)),
                         ("Zenoh echo, separate process (transport floor)", lambda: served_in_subprocess(
                             None, ys, args.rate, args.threads))):
            stats, missed, node_line = fn()
            rows.append((name, stats, missed, node_line))
    floor = rows[0][1].summary()["p50_us"]
    print(f"{len(ys)} readings at {args.rate:g} Hz ({args.seconds:g} s), torch threads {args.threads}, "
          f"{platform.machine()} {platform.python_version()}, torch {torch.__version__}")
    print("| path | p50 µs | p99 µs | max µs | missed (> 1 period) | p50 / floor |\n|---|---|---|---|---|---|")
    for name, stats, missed, _ in rows:
        r = stats.summary()
        print(f"| {name} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {r['max_us']:.1f} | {missed:.4%} | "
              f"{r['p50_us'] / floor:.2f} |")
    for name, _, _, node_line in rows:
        if node_line:
            print(f"{name}: node side {re.sub(r'^controller step: ', '', node_line)}")


if __name__ == "__main__":
    main()
