"""``ZenohNode``: two sessions on 127.0.0.1 exchange readings and commands; every bad-input policy holds."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from io_helpers import ROS_REASON

zenoh = pytest.importorskip("zenoh", reason=ROS_REASON)
pytest.importorskip("rosbags", reason=ROS_REASON)

from pcctrl.agents import arm_controller  # noqa: E402
from pcctrl.errors import NonFiniteError  # noqa: E402
from pcctrl.io import NodePolicy, ZenohNode, zenoh_config  # noqa: E402
from pcctrl.io.messages import JOINT_STATE, deserialize, joint_state, serialize, stamp_ns  # noqa: E402

JOINTS = ["shoulder", "elbow"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reading(ns: int, q, names=("elbow", "wrist", "shoulder")) -> bytes:
    """A JointState with extra joints in another order than the node's."""
    values = {"shoulder": q[0], "elbow": q[1]}
    return serialize(joint_state(ns, list(names), [values.get(n, 7.0) for n in names]))


def effort(reply: bytes) -> tuple[np.ndarray, int]:
    msg = deserialize(reply, JOINT_STATE)
    assert list(msg.name) == JOINTS
    return np.array(msg.effort), stamp_ns(msg)


class Robot:
    """The robot side: a second Zenoh session that publishes readings and waits for each command."""

    def __init__(self, endpoint: str) -> None:
        self.session = zenoh.open(zenoh_config(connect=[endpoint]))
        self.replies: list[bytes] = []
        self.event = threading.Event()
        self.sub = self.session.declare_subscriber("robot/command", self._on)
        self.pub = self.session.declare_publisher("robot/joint_states")

    def _on(self, sample) -> None:
        self.replies.append(sample.payload.to_bytes())
        self.event.set()

    def exchange(self, payload: bytes, timeout: float = 5.0) -> bytes:
        self.event.clear()
        count = len(self.replies)
        self.pub.put(payload)
        deadline = time.monotonic() + timeout
        while len(self.replies) == count:
            assert time.monotonic() < deadline, "no command came back"
            self.event.wait(0.05)
        return self.replies[-1]

    def close(self) -> None:
        self.session.close()


def test_two_sessions_exchange_and_the_command_is_controller_step(caplog):
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    policy = NodePolicy(budget_s=None, max_age_s=2.0)
    skew = [0]  # node clock minus robot clock, to make a reading stale without waiting
    node = ZenohNode(arm_controller(0.02, goal=(0.5, -0.3)), JOINTS, "robot/joint_states", "robot/command",
                     config=zenoh_config(listen=[endpoint]), policy=policy,
                     clock_ns=lambda: time.time_ns() + skew[0]).start()
    robot = Robot(endpoint)
    reference = arm_controller(0.02, goal=(0.5, -0.3))
    try:
        robot.exchange(b"\x00\x01")  # the route is up once anything comes back (a hold, before any reading)
        rng = np.random.default_rng(0)
        for i in range(30):
            q = rng.normal(scale=0.2, size=2)
            ns = time.time_ns()
            command, stamp = effort(robot.exchange(reading(ns, q)))
            if i == 0:
                reference.reset(q)
            np.testing.assert_array_equal(command, reference.step(q))  # same numbers, bit for bit
            assert stamp == ns  # the command names the reading it answers
        last = command
        with caplog.at_level(logging.WARNING, logger="pcctrl.io.node"):
            hold, _ = effort(robot.exchange(b"garbage bytes, not CDR"))
            np.testing.assert_array_equal(hold, last)
            wrong, _ = effort(robot.exchange(reading(time.time_ns(), [0.0, 0.0], names=("hip", "knee"))))
            np.testing.assert_array_equal(wrong, last)
            skew[0] = 5_000_000_000
            stale, _ = effort(robot.exchange(reading(time.time_ns(), [0.0, 0.0])))
            np.testing.assert_array_equal(stale, np.zeros(2))
            skew[0] = 0
            late, _ = effort(robot.exchange(reading(time.time_ns() - 3_000_000_000, [0.0, 0.0])))
            np.testing.assert_array_equal(late, last)  # older than the last reading: out of order, held
            # After all that, a good reading is stepped as usual.
            q = np.array([0.1, -0.1])
            command, _ = effort(robot.exchange(reading(time.time_ns(), q)))
            np.testing.assert_array_equal(command, reference.step(q))
        text = caplog.text
        assert "malformed message on 'robot/joint_states'" in text
        assert "wrong joint names" in text and "['hip', 'knee']" in text
        assert "stale reading" in text and "safe action" in text
        assert "not newer than the last one" in text
        assert node.counts["malformed"] == 2 and node.counts["wrong_joints"] == 1 and node.counts["stale"] == 1
        assert node.counts["out_of_order"] == 1
        assert node.counts["steps"] == 31 and node.stats.count == 31
    finally:
        robot.close()
        node.close()
    assert "controller step: 31 steps" in node.summary()


def _offline(controller=None, **kwargs) -> ZenohNode:
    """A node used through ``handle`` only (no session)."""
    return ZenohNode(controller or arm_controller(0.02, goal=(0.5, -0.3)), JOINTS, "in", "out", **kwargs)


class FakeClock:
    """Step clock advancing ``step`` seconds per call (a deterministic slow controller)."""

    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def test_missed_deadline_sends_late_command_then_safe_action(caplog):
    clock_ns = [10_000]
    node = _offline(policy=NodePolicy(budget_s=0.001, max_age_s=None, max_missed=3, safe_action=[0.25, -0.25]),
                    step_clock=FakeClock(0.002), clock_ns=lambda: clock_ns[0])
    reference = arm_controller(0.02, goal=(0.5, -0.3))
    with caplog.at_level(logging.WARNING, logger="pcctrl.io.node"):
        q = np.array([0.05, 0.02])
        reference.reset(q)
        for i in range(4):
            command, _ = effort(node.handle(reading(1000 + i, q)))
            expected = reference.step(q)
            if i < 2:
                np.testing.assert_array_equal(command, expected)  # late, but the freshest estimate
                assert node.last_status == "late"
            else:
                np.testing.assert_array_equal(command, [0.25, -0.25])
                assert node.last_status == "safe"
    assert "missed the step deadline" in caplog.text and "3 missed deadlines in a row" in caplog.text
    assert node.counts["missed"] == 4 and node.stats.missed == 4


def test_out_of_order_reading_is_dropped_and_held():
    node = _offline(policy=NodePolicy(budget_s=None, max_age_s=None))
    first, _ = effort(node.handle(reading(2000, [0.1, 0.1])))
    held, stamp = effort(node.handle(reading(1000, [0.9, 0.9])))
    np.testing.assert_array_equal(held, first)
    assert node.last_status == "hold" and node.counts["out_of_order"] == 1 and node.counts["steps"] == 1
    assert stamp == 1000


def test_before_any_reading_hold_is_the_safe_action():
    node = _offline(policy=NodePolicy(budget_s=None, safe_action=[0.0, 0.5]))
    command, _ = effort(node.handle(b""))
    np.testing.assert_array_equal(command, [0.0, 0.5])
    assert node.counts["malformed"] == 1


def test_nan_joint_values_are_missing_readings_not_errors():
    node = _offline(policy=NodePolicy(budget_s=None, max_age_s=None))
    reference = arm_controller(0.02, goal=(0.5, -0.3))
    q = np.array([0.1, 0.2])
    node.handle(reading(1, q))
    reference.reset(q)
    reference.step(q)
    command, _ = effort(node.handle(reading(2, [np.nan, 0.3])))
    np.testing.assert_array_equal(command, reference.step([np.nan, 0.3]))
    assert node.last_status == "ok"


class Exploding:
    """A controller whose steps fail (the way a diverging filter does, or with a plain bug)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def reset(self, obs):
        pass

    def step(self, obs, deadline=None):
        raise self.error


@pytest.mark.parametrize("error", [NonFiniteError("belief became NaN"), RuntimeError("a bug")])
def test_controller_error_sends_the_safe_action(caplog, error):
    node = _offline(Exploding(error), policy=NodePolicy(budget_s=None, max_age_s=None))
    with caplog.at_level(logging.WARNING, logger="pcctrl.io.node"):
        command, _ = effort(node.handle(reading(1, [0.0, 0.0])))
    np.testing.assert_array_equal(command, np.zeros(2))
    assert "controller error" in caplog.text and node.counts["errors"] == 1


def test_rate_mode_coasts_then_goes_safe_without_readings():
    now = [1_000_000_000]
    node = _offline(policy=NodePolicy(budget_s=None, max_age_s=0.05), rate_hz=100.0, clock_ns=lambda: now[0])
    reference = arm_controller(0.02, goal=(0.5, -0.3))
    q = np.array([0.1, 0.2])
    node.handle(reading(now[0], q))
    reference.reset(q)
    reference.step(q)
    now[0] += 10_000_000
    command, _ = effort(node.tick_without_reading())
    np.testing.assert_array_equal(command, reference.step(np.full(2, np.nan)))  # the filter coasts
    assert node.last_status == "coast"
    now[0] += 100_000_000
    command, _ = effort(node.tick_without_reading())
    np.testing.assert_array_equal(command, np.zeros(2))
    assert node.last_status == "safe" and node.counts["stale"] == 1


def test_rate_mode_over_zenoh_steps_at_the_rate():
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    node = ZenohNode(arm_controller(0.01, goal=(0.5, -0.3)), JOINTS, "robot/joint_states", "robot/command",
                     config=zenoh_config(listen=[endpoint]), policy=NodePolicy(budget_s=None, max_age_s=0.2),
                     rate_hz=100.0).start()
    robot = Robot(endpoint)
    try:
        spinner = threading.Thread(target=node.spin, args=(1.5,))
        spinner.start()
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            robot.pub.put(reading(time.time_ns(), [0.1, 0.1]))
            time.sleep(0.01)
        spinner.join(5.0)
        assert not spinner.is_alive()
        assert node.counts["steps"] > 20 and len(robot.replies) > 20
    finally:
        robot.close()
        node.close()


def test_cli_serve_answers_over_zenoh(tmp_path):
    pytest.importorskip("onnxruntime", reason="needs the [export] extra for an ONNX controller")
    from pcctrl.runtime import ExportedController, export

    controller = arm_controller(0.02, goal=(0.5, -0.3))
    path = export(controller, tmp_path / "arm.onnx")
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "pcctrl", "serve", str(path), "--sub", "robot/joint_states",
                             "--pub", "robot/command", "--joints", "shoulder,elbow", "--listen", endpoint,
                             "--duration", "20", "--max-age-ms", "5000"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    robot = None
    try:
        for _ in range(100):  # the node needs a moment to import and listen
            try:
                robot = Robot(endpoint)
                break
            except Exception:
                time.sleep(0.1)
        assert robot is not None
        reference = ExportedController(path)
        deadline = time.monotonic() + 15
        while not robot.replies:  # wait for the route; answers before the first step are holds
            assert time.monotonic() < deadline
            robot.pub.put(b"ping")
            time.sleep(0.1)
        q = np.array([0.1, -0.2])
        command, _ = effort(robot.exchange(reading(time.time_ns(), q)))
        reference.reset(q)
        np.testing.assert_allclose(command, reference.step(q), rtol=0, atol=1e-12)
    finally:
        if robot is not None:
            robot.close()
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "controller step: 1 steps" in out and "malformed" in out
