"""Largest relative error of the PC update against autograd's gradient, per model and algorithm.

Models: the test suite's MLP (tanh, relu), CNN, residual block and unrolled LSTM cells; losses MSE
and cross-entropy; float32 and float64; on the fused analytic path and on the autograd path
(``fused=False``; the traced residual and LSTM graphs always take the autograd path). Bars: 1e-5
(fp32), 1e-10 (fp64) for "exact" and "fpa". Usage: ``python benchmarks/bp_exactness.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core"))
from test_bp_equivalence import CASES, _network, _target  # noqa: E402  (the tests' model zoo)

from pcctrl.core.diagnostics import bp_alignment  # noqa: E402


def main() -> None:
    print(f"{'model':<18}{'algorithm':<10}{'loss':<6}{'path':<7}{'fp32 max rel err':>18}{'fp64 max rel err':>18}")
    worst = {torch.float32: 0.0, torch.float64: 0.0}
    for case in CASES:
        for algorithm in ("exact", "fpa"):
            for loss in ("mse", "ce"):
                for fused in (True, False):
                    errors = []
                    for dtype in (torch.float32, torch.float64):
                        net, x = _network(case, dtype, algorithm, fused)
                        torch.manual_seed(1)
                        alignment = bp_alignment(net, x, _target(loss, dtype, x.shape[0]), loss=loss)
                        errors.append(max(a.relative_error for a in alignment.values()))
                        worst[dtype] = max(worst[dtype], errors[-1])
                    path = "fused" if net.has_fused_path else "eager"
                    if fused and path == "eager":
                        continue  # a traced graph: the autograd path, printed once below
                    print(f"{case:<18}{algorithm:<10}{loss:<6}{path:<7}{errors[0]:18.2e}{errors[1]:18.2e}")
    print(f"\nworst: fp32 {worst[torch.float32]:.2e} (bar 1e-5), fp64 {worst[torch.float64]:.2e} (bar 1e-10)")


if __name__ == "__main__":
    main()
