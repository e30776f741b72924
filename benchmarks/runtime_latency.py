"""Step latency (median, p99) of reflex, filter + reflex and filter + planner: Python, torch.export, ONNX.

Usage: python benchmarks/runtime_latency.py [--steps 5000] [--threads 1 2] [--device cpu|cuda] [--skip-aoti]
The planner row uses a linear state-feedback planner behind the Planner protocol (the EFE planner
is benchmarked on its own); its cost here is the filter plus the composition overhead.
``--device cuda`` runs the exported steps on the GPU (torch.export program moved there; ONNX
with onnxruntime's CUDA provider where installed); the Python controllers are numpy/CPU by
design (host readings in, host action out) and are measured on the CPU in every case.
Bars (issue 12): exported reflex <= 50 us median; filter + reflex <= 100 us median.
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
    """a = -K (mean - target) on the Planner protocol's tensors ``(E, d) -> (E, a)``: the cheapest honest planner."""

    def __init__(self) -> None:
        self.gain = torch.tensor([[2.0, 0.0, 0.2, 0.0], [0.0, 1.0, 0.0, 0.05]], dtype=torch.float64)
        self.target = torch.tensor([0.4, -0.6, 0.0, 0.0], dtype=torch.float64)

    def plan(self, features: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        return ((features.to(torch.float64) - self.target) @ -self.gain.T).clamp(-1, 1)


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
    parser.add_argument("--device", default="cpu", help="where the exported steps run (cpu or cuda)")
    parser.add_argument("--skip-aoti", action="store_true", help="skip the AOTInductor rows (~1 min of compiling)")
    args = parser.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    ys = rng.normal(scale=0.1, size=(args.steps, 2))
    ys[rng.random(ys.shape) < 0.1] = np.nan  # some dropped readings, as on a robot
    reflex_ys = rng.normal(scale=0.1, size=(args.steps, 4))
    tmp = Path(tempfile.mkdtemp())
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"python {platform.python_version()}; 2-joint arm, reflex order 3, 1 perception iteration, float64; "
          f"exported steps on {device}")
    rows: dict[tuple[str, str], list[str]] = {}
    fr = arm_controller(0.001, goal=[0.4, -0.6], iters=1, perception_lr=None)
    exported = []  # written once: the files do not depend on the thread count
    formats = [("pt2", "torch.export", f"torch.export ({device.type})"),
               ("onnx", "onnx", f"ONNX (onnxruntime, {device.type})")]
    if not args.skip_aoti and device.type == "cpu":
        formats.append(("aoti.pt2", "aoti", "AOTInductor (cpu)"))
    for suffix, fmt, label in formats:
        try:
            begin = time.perf_counter()
            exported.append(("reflex", label, ExportedController(
                export(fr.reflex, tmp / f"r.{suffix}", format=fmt), device), reflex_ys))
            exported.append(("filter + reflex", label, ExportedController(
                export(fr, tmp / f"fr.{suffix}", format=fmt), device), ys))
            print(f"export {fmt}: {time.perf_counter() - begin:.1f} s for both (write, load, check)")
        except (ImportError, ValueError, RuntimeError) as exc:
            print(f"skipping {fmt}: {exc}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        fr = arm_controller(0.001, goal=[0.4, -0.6], iters=1, perception_lr=None)
        cases = [("reflex", "python (cpu)", fr.reflex, reflex_ys), ("filter + reflex", "python (cpu)", fr, ys)]
        cases += exported
        planner = FilterPlannerController(PCFilter(fr.filter.model), FeedbackPlanner(), -1, 1,
                                          initial_cov=np.diag([0.05, 0.05, 0.5, 0.5]))
        cases.append(("filter + planner", "python (cpu)", planner, ys))
        for name, label, ctrl, data in cases:
            med, p99 = time_steps(ctrl, data)
            rows.setdefault((name, label), []).extend([f"{med:.1f}", f"{p99:.1f}"])
    print("| controller | backend | " + " | ".join(f"median µs ({t} thr) | p99 µs ({t} thr)" for t in args.threads)
          + " |")
    print("|---|---|" + "---|---|" * len(args.threads))
    for (name, backend), vals in rows.items():
        print(f"| {name} | {backend} | " + " | ".join(vals) + " |")


if __name__ == "__main__":
    main()
