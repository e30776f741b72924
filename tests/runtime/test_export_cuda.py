"""An exported step run on a GPU matches the Python controller (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcctrl.agents.reflex_agent import arm_controller
from pcctrl.runtime import ExportedController, export

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_torch_export_program_on_cuda_matches_python_step(tmp_path) -> None:
    c = arm_controller(0.001, goal=[0.4, -0.6], iters=3, perception_lr=None, prior_precision=0.5)
    ex = ExportedController(export(c, tmp_path / "step.pt2"), device="cuda")
    rng = np.random.default_rng(5)
    c.reset(np.array([0.1, -0.1]))
    ex.reset(np.array([0.1, -0.1]))
    for _ in range(200):
        y = np.array([0.4, -0.6]) + 0.05 * rng.normal(size=2)
        y[rng.random(2) < 0.1] = np.nan
        np.testing.assert_allclose(ex.step(y), c.step(y), atol=1e-5, rtol=0)
