"""Save + load time of the safe checkpoint format against what pcctrl 0.1 did, side by side.

Usage: python benchmarks/checkpoint_speed.py [--rounds 30] [--threads 1]
Rows: a FilterReflexController (the ArmReach arm's filter + reflex) with ``save_checkpoint`` /
``load_checkpoint`` against ``pickle`` (0.1's format), and an ActiveInferenceAgent's payload
(2-member ensemble, 500 buffered steps; what ``save`` writes) through ``write_checkpoint`` /
``read_checkpoint`` against ``torch.save`` / ``torch.load(weights_only=True)`` (0.1's format). The
safe format fsyncs before its atomic rename (0.1 did not); the in-memory row shows the format alone.
Rounds alternate the two formats; medians in ms and their ratio.
"""

from __future__ import annotations

import argparse
import io
import pickle
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import pcctrl.envs  # noqa: F401
from pcctrl.agents.active_inference import ActiveInferenceAgent
from pcctrl.agents.reflex_agent import arm_controller
from pcctrl.checkpoint_io import read_checkpoint, to_bytes, write_checkpoint
from pcctrl.runtime import load_checkpoint, save_checkpoint
from pcctrl.runtime.checkpoint import object_to_tree, tree_to_object


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def _compare(name: str, new: Callable[[], object], old: Callable[[], object], rounds: int) -> None:
    new_ms, old_ms = [], []
    for _ in range(rounds):
        new_ms.append(_time(new))
        old_ms.append(_time(old))
    n, o = statistics.median(new_ms), statistics.median(old_ms)
    print(f"| {name} | {n:.2f} | {o:.2f} | {n / o:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp())

    controller = arm_controller(0.001, goal=[0.4, -0.6], iters=3)
    controller.reset(np.zeros(2))
    for y in np.random.default_rng(0).normal(scale=0.1, size=(50, 2)):
        controller.step(y)
    ckpt, pkl = folder / "c.ckpt", folder / "c.pkl"

    def new_controller() -> object:
        save_checkpoint(controller, ckpt)
        return load_checkpoint(ckpt)

    def old_controller() -> object:
        pkl.write_bytes(pickle.dumps(controller, protocol=pickle.HIGHEST_PROTOCOL))
        return pickle.loads(pkl.read_bytes())

    agent = ActiveInferenceAgent("Pendulum-v1", members=2, hidden=(32, 32), train_steps=5, learning_starts=100,
                                 train_freq=100, horizon=5, candidates=16, iterations=1, elites=4)
    agent.learn(500)
    new_path, old_path = folder / "a.ckpt", folder / "a.pt"

    payload = agent._payload()

    def new_agent() -> object:
        write_checkpoint(new_path, "bench", payload)
        return read_checkpoint(new_path, "bench")

    def old_agent() -> object:
        torch.save(payload, old_path)
        return torch.load(io.BytesIO(old_path.read_bytes()), weights_only=True)

    print(f"# checkpoint save+load, {platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), "
          f"median of {args.rounds} alternating rounds")
    print("| what | safe format ms | 0.1 format ms | ratio |\n|---|---|---|---|")
    _compare("FilterReflexController save+load", new_controller, old_controller, args.rounds)
    _compare("ActiveInferenceAgent payload write+read", new_agent, old_agent, args.rounds)

    def new_memory() -> object:
        tree = object_to_tree(controller)
        _, payload = read_checkpoint("memory", "bench", data=to_bytes("bench", {"controller": tree}))
        return tree_to_object(payload["controller"])

    def old_memory() -> object:
        return pickle.loads(pickle.dumps(controller, protocol=pickle.HIGHEST_PROTOCOL))

    _compare("FilterReflexController in memory (no file, no fsync)", new_memory, old_memory, args.rounds)
    print(f"# sizes: controller {ckpt.stat().st_size} B safe vs {pkl.stat().st_size} B pickle; "
          f"agent {new_path.stat().st_size} B safe vs {old_path.stat().st_size} B torch.save")


if __name__ == "__main__":
    main()
