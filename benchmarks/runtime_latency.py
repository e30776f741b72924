"""Step latency (median, p99) of reflex, filter + reflex and filter + planner: Python, TorchScript, ONNX, CPU.

Usage: python benchmarks/runtime_latency.py [--steps 5000] [--threads 1 2]
The planner row uses a linear state-feedback planner behind the Planner protocol (the EFE planner
is benchmarked on its own); its cost here is the filter plus the composition overhead.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pcctrl.agents.reflex_agent import arm_controller
from pcctrl.estimation import PCFilter
from pcctrl.runtime import ExportedController, FilterPlannerController, export


class FeedbackPlanner:
    """a = -K (mean - target): the cheapest honest planner."""

    def __init__(self) -> None:
        self.gain = np.array([[2.0, 0.0, 0.2, 0.0], [0.0, 1.0, 0.0, 0.05]])
        self.target = np.array([0.4, -0.6, 0.0, 0.0])

    def plan(self, mean: np.ndarray) -> np.ndarray:
        return np.clip(-self.gain @ (mean - self.target), -1, 1)


def time_steps(controller, ys: np.ndarray) -> tuple[float, float]:
    controller.reset(ys[0])
    for y in ys[1:200]:  # warm-up
        controller.step(y)
    out = np.empty(len(ys))
    clock = time.perf_counter
    for i, y in enumerate(ys):
        t = clock()
        controller.step(y)
        out[i] = clock() - t
    return float(np.median(out) * 1e6), float(np.percentile(out, 99) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    ys = rng.normal(scale=0.1, size=(args.steps, 2))
    ys[rng.random(ys.shape) < 0.1] = np.nan  # some dropped readings, as on a robot
    reflex_ys = rng.normal(scale=0.1, size=(args.steps, 4))
    tmp = Path(tempfile.mkdtemp())
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"python {platform.python_version()}; 2-joint arm, reflex order 3, 1 perception iteration, float64")
    print("| controller | backend | " + " | ".join(f"median µs ({t} thr) | p99 µs ({t} thr)" for t in args.threads)
          + " |")
    print("|---|---|" + "---|---|" * len(args.threads))
    rows: dict[tuple[str, str], list[str]] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        fr = arm_controller(0.001, goal=[0.4, -0.6], iters=1, perception_lr=None)
        cases = [("reflex", "python", fr.reflex, reflex_ys), ("filter + reflex", "python", fr, ys)]
        for fmt in ("pt", "onnx"):
            try:
                cases.append(("reflex", fmt, ExportedController(export(fr.reflex, tmp / f"r.{fmt}")), reflex_ys))
                cases.append(("filter + reflex", fmt, ExportedController(export(fr, tmp / f"fr.{fmt}")), ys))
            except ImportError as exc:
                print(f"skipping {fmt}: {exc}")
        planner = FilterPlannerController(PCFilter(fr.filter.model), FeedbackPlanner(), -1, 1,
                                          initial_cov=np.diag([0.05, 0.05, 0.5, 0.5]))
        cases.append(("filter + planner", "python", planner, ys))
        for name, backend, ctrl, data in cases:
            med, p99 = time_steps(ctrl, data)
            rows.setdefault((name, {"pt": "TorchScript", "onnx": "ONNX (onnxruntime)"}.get(backend, backend)),
                            []).extend([f"{med:.1f}", f"{p99:.1f}"])
    for (name, backend), vals in rows.items():
        print(f"| {name} | {backend} | " + " | ".join(vals) + " |")


if __name__ == "__main__":
    main()
