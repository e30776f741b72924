"""Runtime: input policy, deadlines with an injected clock, latency stats, filter + reflex/planner, export, checkpoint."""

from __future__ import annotations

import subprocess
import sys
import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import torch
import pytest
import torch

from pcctrl.agents.reflex_agent import arm_controller
from pcctrl.estimation import PCFilter
from pcctrl.models import InvalidArgumentError, LinearGaussianModel
from pcctrl.runtime import (Controller, ExportedController, FilterPlannerController, FilterReflexController,
                            LatencyStats, RealtimeController, export, load_checkpoint, sanitize_observation,
                            save_checkpoint)


def readings(n: int, seed: int, drop: float = 0.3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        y = rng.normal(scale=0.2, size=2)
        y[rng.random(2) < drop] = np.nan
        if rng.random() < 0.05:
            y[0] = np.inf
        out.append(y)
    return out


def make(iters: int = 3) -> FilterReflexController:
    return arm_controller(0.001, goal=[0.4, -0.6], iters=iters, perception_lr=None, prior_precision=0.5)


def test_sanitize_policy():
    raw = np.array([1.0, np.inf, np.nan, -np.inf])
    clean = sanitize_observation(raw, 4)
    np.testing.assert_array_equal(np.isnan(clean), [False, True, True, True])
    assert np.isinf(raw[1])  # the caller's array is not touched
    with pytest.raises(InvalidArgumentError):
        sanitize_observation(np.zeros((2, 2)), 4)
    with pytest.raises(InvalidArgumentError):
        sanitize_observation("abc", 4)


def test_filter_reflex_bad_input_keeps_state_and_nonfinite_coasts():
    c = make()
    assert isinstance(c, Controller)
    c.reset(np.array([0.0, 0.0]))
    for y in readings(20, 0):
        c.step(y)
    before = c.get_state()
    with pytest.raises(InvalidArgumentError):
        c.step(np.zeros(3))
    for key, value in c.get_state().items():
        np.testing.assert_array_equal(value, before[key])
    # All readings missing: the belief is the model's prediction (coasting), and stays finite.
    c.step(np.array([np.nan, np.inf]))
    model = c.filter.model
    predicted = model.A.numpy() @ before["filter.mean"] + model.B.numpy() @ before["reflex.action"]
    np.testing.assert_allclose(c.filter.belief.mean.numpy(), predicted, atol=1e-12)


def test_realtime_deadline_with_fake_clock_and_stats():
    t = [0.0]

    def clock():  # every call advances 10 us: the 1st relaxation check happens at 30 us
        t[0] += 10e-6
        return t[0]

    fast = RealtimeController(make(iters=50), budget_s=45e-6, clock=clock)
    ref = make(iters=3)
    ys = readings(30, 1)
    fast.reset(np.zeros(2))
    ref.reset(np.zeros(2))
    ref.reflex.perception_lr = fast.controller.reflex.perception_lr
    for y in ys:
        a, b = fast.step(y), ref.step(y)
        # start=10, deadline object reads none; checks at 20, 30, 40 (<55), 50 (<55), 60 -> stop after 5 iters
        assert fast.controller.reflex.last_iters == 5
    s = fast.stats.summary()
    assert s["steps"] == 30 and s["missed"] == 30  # the end reading (70 us) is past the 45 us budget
    np.testing.assert_allclose(s["p50_us"], 60.0)
    # Same number of iterations without a deadline gives the same actions.
    cap = make(iters=5)
    cap.reset(np.zeros(2))
    fast2 = RealtimeController(make(iters=50), budget_s=45e-6, clock=clock)
    fast2.reset(np.zeros(2))
    for y in ys:
        np.testing.assert_array_equal(fast2.step(y), cap.step(y))


def test_latency_stats_match_numpy():
    rng = np.random.default_rng(3)
    x = rng.exponential(1e-5, size=1000)
    stats = LatencyStats(capacity=2000)
    for i, v in enumerate(x):
        stats.record(v, missed=i % 10 == 0)
    s = stats.summary()
    np.testing.assert_allclose([s["p50_us"], s["p99_us"], s["max_us"]],
                               [np.percentile(x, 50) * 1e6, np.percentile(x, 99) * 1e6, x.max() * 1e6])
    assert s["missed"] == 100 and "p99" in stats.table()


class GainPlanner:
    """An honest trivial planner: linear state feedback a = -K (mean - target)."""

    def __init__(self, gain: np.ndarray, target: np.ndarray) -> None:
        self.gain, self.target = gain, target

    def plan(self, features: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        return -(features - torch.as_tensor(self.target)) @ torch.as_tensor(self.gain).T

    def plan_one(self, belief_mean: np.ndarray) -> np.ndarray:
        return -self.gain @ (belief_mean - self.target)


def test_filter_planner_matches_filter_then_plan():
    dt = 0.05
    A = np.array([[1, dt], [0, 1.0]])
    B = np.array([[0.0], [dt]])
    model = LinearGaussianModel(A, B, np.array([[1.0, 0.0]]), 0.01, 0.04)
    planner = GainPlanner(np.array([[2.0, 1.5]]), np.array([1.0, 0.0]))
    ctrl = FilterPlannerController(PCFilter(model), planner, action_low=-1, action_high=1)
    ref = PCFilter(LinearGaussianModel(A, B, np.array([[1.0, 0.0]]), 0.01, 0.04))
    ctrl.reset(np.array([0.0]))
    ref.reset(np.zeros(2), np.eye(2))
    ref.correct(np.array([0.0]))
    a_prev = np.zeros(1)
    x = np.zeros(2)
    for t in range(200):
        y = np.array([x[0] + 0.2 * np.sin(t)]) if t % 4 else np.array([np.nan])
        a = ctrl.step(y)
        mean = ref.update(y, a_prev).mean.numpy()
        np.testing.assert_allclose(a, np.clip(planner.plan_one(mean), -1, 1), atol=1e-12)
        a_prev = a
        x = A @ x + B @ a
    assert abs(x[0] - 1.0) < 0.1


def test_planner_returning_garbage_is_rejected():
    model = LinearGaussianModel(np.eye(1), np.eye(1), np.eye(1), 0.1, 0.1)

    class Bad:
        def plan(self, features, rows=None):
            return torch.full((features.shape[0], 1), float("nan"))

    c = FilterPlannerController(PCFilter(model), Bad())
    c.reset(np.zeros(1))
    with pytest.raises(InvalidArgumentError):
        c.step(np.zeros(1))


@pytest.mark.parametrize("suffix", [".pt2", ".pt", ".onnx"])
def test_export_matches_python_step(tmp_path, suffix):
    if suffix == ".onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
        pytest.importorskip("onnxscript")
    c = make(iters=4)
    path = export(c, tmp_path / f"step{suffix}")
    ex = ExportedController(path)
    ys = readings(300, 5)
    c.reset(np.array([0.1, -0.1]))
    ex.reset(np.array([0.1, -0.1]))
    for y in ys:
        np.testing.assert_allclose(ex.step(y), c.step(y), atol=1e-5, rtol=0)
    np.testing.assert_allclose(ex.state["mean"], c.filter.belief.mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(ex.state["mu"], c.reflex.mu, atol=1e-5)


def test_export_reflex_alone(tmp_path):
    c = make(iters=2).reflex
    ex = ExportedController(export(c, tmp_path / "reflex.pt2"))
    rng = np.random.default_rng(2)
    c.reset(np.zeros(4))
    ex.reset(np.zeros(4))
    for _ in range(100):
        y = rng.normal(size=4)
        y[rng.random(4) < 0.2] = np.nan
        np.testing.assert_allclose(ex.step(y), c.step(y), atol=1e-5, rtol=0)


def test_export_rejects_what_it_cannot_export(tmp_path):
    model = LinearGaussianModel(np.eye(1), np.eye(1), np.eye(1), 0.1, 0.1)
    planner = FilterPlannerController(PCFilter(model), GainPlanner(np.eye(1), np.zeros(1)))
    with pytest.raises(InvalidArgumentError):
        export(planner, tmp_path / "x.pt2")
    with pytest.raises(InvalidArgumentError):
        export(make(), tmp_path / "x.zip")
    with pytest.raises(InvalidArgumentError, match="TorchScript"):
        export(make(), tmp_path / "x.pt", format="torchscript")
    with pytest.raises(InvalidArgumentError, match="dtype"):
        export(make(), tmp_path / "x.pt2", dtype=torch.float16)


def test_checkpoint_resumes_in_a_fresh_process(tmp_path):
    c = make()
    ys = readings(120, 7)
    c.reset(np.zeros(2))
    for y in ys[:60]:
        c.step(y)
    save_checkpoint(c, tmp_path / "ctrl.ckpt")
    np.save(tmp_path / "ys.npy", np.array(ys[60:]))
    expected = np.array([c.step(y) for y in ys[60:]])
    script = textwrap.dedent(f"""
        import numpy as np
        from pcctrl.runtime import load_checkpoint
        c = load_checkpoint({str(tmp_path / 'ctrl.ckpt')!r})
        ys = np.load({str(tmp_path / 'ys.npy')!r})
        np.save({str(tmp_path / 'out.npy')!r}, np.array([c.step(y) for y in ys]))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    restored = load_checkpoint(tmp_path / "ctrl.ckpt")
    np.testing.assert_array_equal(restored.step(ys[60]), expected[0])


def test_export_float32_matches_python_step(tmp_path):
    c = make(iters=2)
    ex = ExportedController(export(c, tmp_path / "step32.pt2", dtype=torch.float32))
    assert ex.meta["dtype"] == "float32"
    c.reset(np.array([0.1, -0.1]))
    ex.reset(np.array([0.1, -0.1]))
    for y in readings(100, 3):
        np.testing.assert_allclose(ex.step(y), c.step(y), atol=1e-4, rtol=0)


def test_export_checks_the_written_file_against_the_step(tmp_path, monkeypatch):
    # A runner that returns wrong numbers makes export fail instead of leaving a bad file unnoticed.
    original = ExportedController._run
    monkeypatch.setattr(ExportedController, "_run", lambda self, **kw: [o + 1e-3 for o in original(self, **kw)])
    with pytest.raises(RuntimeError, match="disagrees"):
        export(make(), tmp_path / "bad.pt2")
    assert not (tmp_path / "bad.pt2").exists() and not (tmp_path / "bad.pt2.json").exists()


def test_old_torchscript_exports_are_refused_clearly(tmp_path):
    path = export(make(), tmp_path / "step.pt2")
    meta = json.loads(Path(str(path) + ".json").read_text())
    meta["format"] = "torchscript"
    Path(str(path) + ".json").write_text(json.dumps(meta))
    with pytest.raises(InvalidArgumentError, match="re-export"):
        ExportedController(path)


def test_exported_step_runs_without_warnings(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex = ExportedController(export(make(), tmp_path / "quiet.pt2"))
        ex.reset(np.zeros(2))
        ex.step(np.zeros(2))


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="AOTInductor needs a C++ compiler")
def test_aoti_export_matches_python_step(tmp_path):
    c = make(iters=2)
    ex = ExportedController(export(c, tmp_path / "step.pt2", format="aoti"))
    assert ex.format == "aoti"
    c.reset(np.array([0.1, -0.1]))
    ex.reset(np.array([0.1, -0.1]))
    for y in readings(150, 9):
        np.testing.assert_allclose(ex.step(y), c.step(y), atol=1e-5, rtol=0)
    np.testing.assert_allclose(ex.state["mean"], c.filter.belief.mean.numpy(), atol=1e-5)
    with pytest.raises(InvalidArgumentError, match=".pt2"):
        export(c, tmp_path / "step.so", format="aoti")
