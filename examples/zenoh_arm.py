"""ArmReach closed over Zenoh: a simulated robot publishes JointState on 127.0.0.1, a served controller answers.

Usage: python examples/zenoh_arm.py [--seconds 4] [--seed 0] [--port 0]

The robot side (pcctrl/ArmReach-v0, 50 Hz) publishes its encoder readings as ROS 2 CDR
sensor_msgs/JointState on ``arm/joint_states`` and applies each command it gets back on
``arm/command``. The controller side is a :class:`pcctrl.io.ZenohNode` in a second Zenoh
session serving the filter + reflex controller exported to ONNX (the Python controller when
onnxruntime is not installed). The same episode is then run with the controller in-process;
both reach the target the same way.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import pcctrl.envs  # noqa: F401  (registers the ids)
from pcctrl.agents import arm_controller, arm_joint_goal
from pcctrl.io import NodePolicy, ZenohNode, zenoh_config
from pcctrl.io.messages import JOINT_STATE, deserialize, joint_state, serialize

JOINTS = ["shoulder", "elbow"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_controller(controller, folder: Path):
    """The controller exported to ONNX and loaded back, or the controller itself without onnxruntime."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return controller, "Python (onnxruntime not installed)"
    from pcctrl.runtime import ExportedController, export

    return ExportedController(export(controller, folder / "arm.onnx")), "ONNX export"


def run_over_zenoh(env: gym.Env, seed: int, steps: int, port: int, folder: Path) -> tuple[np.ndarray, list, str, str]:
    """The robot loop with the controller behind Zenoh; returns distances, commands, node summary, backend."""
    import zenoh

    obs, _ = env.reset(seed=seed)
    controller, backend = served_controller(arm_controller(env.unwrapped.dt, goal=arm_joint_goal(obs[-2:], obs[:2])),
                                            folder)
    endpoint = f"tcp/127.0.0.1:{port}"
    node = ZenohNode(controller, JOINTS, "arm/joint_states", "arm/command", config=zenoh_config(listen=[endpoint]),
                     policy=NodePolicy(budget_s=0.005, max_age_s=0.5)).start()
    robot = zenoh.open(zenoh_config(connect=[endpoint]))
    replies: list[bytes] = []
    arrived = threading.Event()

    def on_command(sample) -> None:
        replies.append(sample.payload.to_bytes())
        arrived.set()

    sub = robot.declare_subscriber("arm/command", on_command)
    pub = robot.declare_publisher("arm/joint_states")
    try:
        limit = time.monotonic() + 10
        while not (pub.matching_status.matching and node.connected):
            if time.monotonic() > limit:
                raise RuntimeError("the node and the robot did not find each other on " + endpoint)
            time.sleep(0.01)
        distances, commands = np.empty(steps), []
        command = np.zeros(2)
        for t in range(steps):
            arrived.clear()
            count = len(replies)
            pub.put(serialize(joint_state(time.time_ns(), JOINTS, obs[:2])))
            arrived.wait(1.0)
            if len(replies) > count:  # no answer within 1 s: the robot holds its last command
                command = np.asarray(deserialize(replies[-1], JOINT_STATE).effort, dtype=np.float64)
            commands.append(command.copy())
            obs, _, _, _, info = env.step(command)
            distances[t] = info["distance"]
    finally:
        sub.undeclare()
        robot.close()
        node.close()
    return distances, commands, node.summary(), backend


def run_in_process(env: gym.Env, seed: int, steps: int) -> tuple[np.ndarray, list]:
    """The same episode with ``controller.step`` called in the loop."""
    obs, _ = env.reset(seed=seed)
    controller = arm_controller(env.unwrapped.dt, goal=arm_joint_goal(obs[-2:], obs[:2]))
    controller.reset(obs[:2])
    distances, commands = np.empty(steps), []
    for t in range(steps):
        command = controller.step(obs[:2])
        commands.append(command)
        obs, _, _, _, info = env.step(command)
        distances[t] = info["distance"]
    return distances, commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="simulated time (default 4 s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args()
    env = gym.make("pcctrl/ArmReach-v0", max_episode_steps=10 ** 9)
    steps = int(round(args.seconds / env.unwrapped.dt))
    with tempfile.TemporaryDirectory() as folder:
        remote, remote_cmd, summary, backend = run_over_zenoh(env, args.seed, steps, args.port or free_port(),
                                                              Path(folder))
    local, local_cmd = run_in_process(env, args.seed, steps)
    gap = float(np.max(np.abs(np.asarray(remote_cmd) - np.asarray(local_cmd))))
    print(f"ArmReach over Zenoh (127.0.0.1), {1 / env.unwrapped.dt:.0f} Hz, {args.seconds:g} s simulated, "
          f"seed {args.seed}, served controller: {backend}")
    print("| controller | start distance m | final distance m | min distance m |\n|---|---|---|---|")
    for name, d in (("served over Zenoh", remote), ("in-process", local)):
        print(f"| {name} | {d[0]:.4f} | {d[-1]:.4f} | {d.min():.4f} |")
    print(f"largest command difference served vs in-process: {gap:.2e}")
    print(summary)


if __name__ == "__main__":
    main()
