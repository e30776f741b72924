"""The batch-1 numpy Gauss-Newton path against the torch path, the numpy kernels against the torch
models, the divergence guard, and ``PCFilter.run`` against the step-by-step loop.

References: the torch path (``small_path=False``) on the same model, autograd-free torch
functions of the models for the kernels, a bisection minimum for the line search (as in
``test_pc_filter_fast_paths``), filterpy's Kalman filter where it is installed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcctrl.errors import DTypeError, DivergenceError, InvalidArgumentError, NotPositiveDefiniteError
from pcctrl.estimation import PCFilter
from pcctrl.estimation.small_gauss_newton import SmallGaussNewton
from pcctrl.models import LinearGaussianModel, StateSpaceModel, pendulum_model
from pcctrl.models.pendulum import PendulumModel

DT, OBS_STD, PROC_STD = 0.05, 0.3, 0.1


def episode(seed: int, steps: int = 150, drop: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A simulated pendulum (textbook step in numpy), noisy [cos, sin] readings, some missing."""
    rng = np.random.default_rng(seed)
    x, states, readings, torques = np.array([rng.uniform(-3, 3), 0.0]), [], [], []
    for t in range(steps):
        if t:
            u = rng.uniform(-2, 2)
            omega = float(np.clip(x[1] + (15.0 * np.sin(x[0]) + 3 * u) * DT + PROC_STD * rng.normal(), -8, 8))
            x = np.array([x[0] + omega * DT, omega])
            torques.append([u])
        z = np.array([np.cos(x[0]), np.sin(x[0])]) + OBS_STD * rng.normal(size=2)
        z[rng.random(2) < drop] = np.nan
        states.append(x)
        readings.append(z)
    return np.array(states), np.array(readings), np.array(torques)


def start(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    angle = np.arctan2(z[1], z[0]) if np.all(np.isfinite(z)) else 0.0
    return np.array([angle, 0.0]), np.diag([OBS_STD**2, 1.0])


@pytest.mark.parametrize("kwargs", [{}, {"max_halvings": 0}, {"tol": None}, {"iters": 1}, {"iters": 3, "tol": 1e-3}])
def test_numpy_path_gives_the_torch_paths_beliefs(kwargs) -> None:
    model = pendulum_model(DT, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=torch.float64)
    for seed in range(3):
        _, readings, torques = episode(seed)
        x0, p0 = start(readings[0])
        fast, slow = PCFilter(model, **kwargs), PCFilter(model, small_path=False, **kwargs)
        a = fast.run(readings, torques, x0, p0)
        assert fast._small is not None and slow._small is None
        b = slow.run(readings, torques, x0, p0)
        torch.testing.assert_close(a.mean, b.mean, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(a.cov, b.cov, rtol=1e-10, atol=1e-12)


def test_numpy_path_in_float32_stores_float32_beliefs_near_the_torch_path() -> None:
    model = pendulum_model(DT, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=torch.float32)
    _, readings, torques = episode(4)
    x0, p0 = start(readings[0])
    a = PCFilter(model).run(readings, torques, x0, p0)
    b = PCFilter(model, small_path=False).run(readings, torques, x0, p0)
    assert a.mean.dtype == torch.float32 and a.cov.dtype == torch.float32
    torch.testing.assert_close(a.mean, b.mean, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(a.cov, b.cov, rtol=1e-4, atol=1e-5)


def test_linear_numpy_path_is_the_kalman_filter() -> None:
    rng = np.random.default_rng(0)
    A = np.array([[1.0, 0.1, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.1], [0.0, 0.0, 0.0, 0.9]])
    B = np.array([[0.0], [0.1], [0.0], [0.05]])
    C = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.5, 0.0, 0.5, 0.0]])
    Q, R = 0.01 * np.eye(4), np.diag([0.1, 0.2, 0.3])
    model = LinearGaussianModel(A, B, C, Q, R, dtype=torch.float64)
    zs, us = rng.normal(size=(80, 3)), rng.normal(size=(79, 1))
    zs[rng.random(zs.shape) < 0.15] = np.nan
    fast = PCFilter(model).run(zs, us)
    slow = PCFilter(model, small_path=False).run(zs, us)
    torch.testing.assert_close(fast.mean, slow.mean, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(fast.cov, slow.cov, rtol=1e-11, atol=1e-12)
    # Textbook Kalman filter on the observed rows only.
    x, P = np.zeros(4), np.eye(4)
    for t, z in enumerate(zs):
        if t:
            x, P = A @ x + B @ us[t - 1], A @ P @ A.T + Q
        seen = np.isfinite(z)
        H, Rs = C[seen], R[np.ix_(seen, seen)]
        K = P @ H.T @ np.linalg.inv(H @ P @ H.T + Rs)
        x, P = x + K @ (z[seen] - H @ x), (np.eye(4) - K @ H) @ P
        np.testing.assert_allclose(fast.mean[t].numpy(), x, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(fast.cov[t].numpy(), P, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_pendulum_kernel_equals_the_torch_model(dtype) -> None:
    model = pendulum_model(DT, dtype=dtype)
    kernel = model.numpy_kernel()
    gen = torch.Generator().manual_seed(1)
    s = torch.cat((torch.rand(40, 2, generator=gen, dtype=torch.float64) * torch.tensor([12.0, 20.0])
                   - torch.tensor([6.0, 10.0]),
                   torch.tensor([[0.0, 8.0], [0.0, -8.0], [0.0, 9.0], [1.0, -12.0]], dtype=torch.float64)))
    a = torch.cat((torch.rand(40, 1, generator=gen, dtype=torch.float64) * 6 - 3,
                   torch.tensor([[0.0], [0.0], [0.0], [5.0]], dtype=torch.float64)))
    s, a = s.to(dtype), a.to(dtype)
    f, F = model.linearize_transition(s, a)
    g, G = model.linearize_observation(s)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for i in range(len(s)):
        fn, Fn = kernel.transition(s[i].double().numpy(), a[i].double().numpy())
        gn, Gn = kernel.observation(s[i].double().numpy())
        np.testing.assert_allclose(fn, f[i].double().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(Fn, F[i].double().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(gn, g[i].double().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(Gn, G[i].double().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(kernel.observe(s[i].double().numpy()), gn, rtol=0, atol=0)


def test_subclasses_and_other_settings_take_the_torch_path() -> None:
    class Heavier(PendulumModel):
        def _observation(self, s):
            return 2 * super()._observation(s)

    base = pendulum_model(DT, dtype=torch.float64)
    sub = Heavier(DT, 10.0, 8.0, 2.0, process_cov=base.process_cov(), obs_cov=base.obs_cov(), dtype=torch.float64)
    assert sub.numpy_kernel() is None and PCFilter(sub)._small is None
    assert PCFilter(base)._small is not None
    assert PCFilter(base, small_path=False)._small is None
    assert PCFilter(base, mode="fixed", prior_precision=np.eye(2))._small is None
    batched = PCFilter(base)
    batched.reset(batch_size=2)
    assert batched._small is None
    batched.reset(batch_size=1)  # a batch of one is still one filter
    assert batched._small is not None
    learnable = LinearGaussianModel(np.eye(2), None, np.eye(2), 0.1, 0.1, learnable=True)
    assert PCFilter(learnable)._small is None
    generic = StateSpaceModel(base.transition, base.observe, 2, 2, 1, process_cov=base.process_cov(),
                              obs_cov=base.obs_cov(), dtype=torch.float64)
    assert PCFilter(generic)._small is None


class CubicSensor(StateSpaceModel):
    """``s' = s``, ``o = s^3`` with a numpy kernel: a sharp sensor whose full Gauss-Newton step overshoots."""

    def __init__(self) -> None:
        super().__init__(lambda s, a: s, lambda s: s**3, 1, 1, process_cov=0.01, obs_cov=1e-4, dtype=torch.float64)

    def numpy_kernel(self):
        class Kernel:
            def transition(self, s, a):
                return s.copy(), np.eye(1)

            def observation(self, s):
                return s**3, np.array([[3 * s[0] ** 2]])

            def observe(self, s):
                return s**3

        return Kernel()


def test_numpy_line_search_backtracks_like_torch(monkeypatch) -> None:
    calls = []
    original = SmallGaussNewton._backtrack
    monkeypatch.setattr(SmallGaussNewton, "_backtrack", lambda self, *a: calls.append(1) or original(self, *a))
    model = CubicSensor()
    for mu in (0.3, -0.5, 2.0):
        for halvings in (0, 4):
            fast, slow = PCFilter(model, iters=30, max_halvings=halvings), PCFilter(
                model, iters=30, max_halvings=halvings, small_path=False)
            for f in (fast, slow):
                f.reset(np.array([mu]), np.ones((1, 1)))
            if halvings == 0 and mu == 0.3:
                # Without the line search the first step from 0.3 raises 2E ~3600x (9.5e3 -> 3.4e7):
                # past a guard of 1e3, not past the default 1e6 (plain Gauss-Newton then recovers).
                for small in (True, False):
                    strict = PCFilter(model, iters=30, max_halvings=0, divergence_factor=1e3, small_path=small)
                    strict.reset(np.array([mu]), np.ones((1, 1)))
                    with pytest.raises(DivergenceError, match="grew"):
                        strict.correct(np.ones(1))
                    assert strict.belief.mean.item() == mu and strict.belief.cov.item() == 1.0
            a, b = fast.correct(np.ones(1)), slow.correct(np.ones(1))
            np.testing.assert_allclose(a.mean.numpy(), b.mean.numpy(), rtol=1e-10)
            np.testing.assert_allclose(a.cov.numpy(), b.cov.numpy(), rtol=1e-9)
    assert calls, "the overshooting start must exercise the numpy backtracking"


def test_divergence_guard_can_be_turned_off_and_is_checked() -> None:
    model = CubicSensor()
    for small in (True, False):
        f = PCFilter(model, iters=30, max_halvings=0, divergence_factor=None, small_path=small)
        f.reset(np.array([0.3]), np.ones((1, 1)))
        try:
            f.correct(np.ones(1))  # no guard: whatever plain Gauss-Newton gives, or non-finite
        except FloatingPointError as exc:
            assert not isinstance(exc, DivergenceError)
    for bad in (1.0, 0.5, float("inf"), "big", True):
        with pytest.raises(InvalidArgumentError, match="divergence_factor"):
            PCFilter(model, divergence_factor=bad)


def test_fixed_mode_guard_catches_a_too_large_step_size() -> None:
    model = LinearGaussianModel(np.eye(2), None, np.eye(2), 0.1, 0.01)
    f = PCFilter(model, mode="fixed", x_lr=1.0)  # curvature ~100: steps of 1.0 grow the error 99x per step
    f.reset(np.zeros(2), np.eye(2))
    before = f.belief
    with pytest.raises(DivergenceError, match="x_lr"):
        f.update(np.array([1.0, -1.0]))
    assert torch.equal(f.belief.mean, before.mean) and torch.equal(f.belief.cov, before.cov)
    ok = PCFilter(model, mode="fixed")  # x_lr=None: 1/L steps, no divergence
    ok.reset(np.zeros(2), np.eye(2))
    ok.update(np.array([1.0, -1.0]))


@pytest.mark.parametrize("small", [True, False])
def test_run_equals_the_step_by_step_loop(small) -> None:
    model = pendulum_model(DT, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=torch.float64)
    _, readings, torques = episode(7, steps=60)
    x0, p0 = start(readings[0])
    loop = PCFilter(model, small_path=small)
    loop.reset(x0, p0)
    expected = [loop.correct(readings[0])] + [loop.update(readings[t], torques[t - 1]) for t in range(1, 60)]
    filt = PCFilter(model, small_path=small)
    out = filt.run(readings, torques, x0, p0)
    assert out.mean.shape == (60, 2) and out.cov.shape == (60, 2, 2)
    np.testing.assert_array_equal(out.mean.numpy(), np.stack([b.mean.numpy() for b in expected]))
    np.testing.assert_array_equal(out.cov.numpy(), np.stack([b.cov.numpy() for b in expected]))
    assert torch.equal(filt.belief.mean, out.mean[-1])
    # One trailing action (taken after the last reading) is accepted and unused.
    again = PCFilter(model, small_path=small).run(readings, np.vstack([torques, [[1.0]]]), x0, p0)
    assert torch.equal(again.mean, out.mean)


def test_run_batched_equals_single_runs() -> None:
    model = pendulum_model(DT, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=torch.float64)
    eps = [episode(s, steps=40, drop=0.0) for s in range(3)]
    readings = np.stack([e[1] for e in eps], axis=1)
    torques = np.stack([e[2] for e in eps], axis=1)
    starts = [start(e[1][0]) for e in eps]
    out = PCFilter(model).run(readings, torques, np.stack([m for m, _ in starts]), np.stack([c for _, c in starts]))
    assert out.mean.shape == (40, 3, 2)
    for i, (m, c) in enumerate(starts):
        single = PCFilter(model).run(readings[:, i], torques[:, i], m, c)
        np.testing.assert_allclose(out.mean[:, i].numpy(), single.mean.numpy(), rtol=1e-9, atol=1e-9)


def test_run_rejects_bad_sequences_clearly() -> None:
    model = pendulum_model(DT, dtype=torch.float64)
    f = PCFilter(model)
    with pytest.raises(InvalidArgumentError, match="readings"):
        f.run(np.zeros((5, 3)), np.zeros((4, 1)))
    with pytest.raises(InvalidArgumentError, match="actions"):
        f.run(np.zeros((5, 2)), np.zeros((2, 1)))
    with pytest.raises(InvalidArgumentError, match="actions"):
        f.run(np.zeros((5, 2)))
    with pytest.raises(DTypeError):
        f.run(np.zeros((5, 2)) * 1j, np.zeros((4, 1)))
    with pytest.raises(InvalidArgumentError, match="readings"):
        f.run([["a", "b"]], None)
    one = f.run(np.array([[1.0, 0.0]]))  # a single reading: correct only, no action needed
    assert one.mean.shape == (1, 2)


@pytest.mark.parametrize("small", [True, False])
def test_complex_inputs_are_refused_with_the_belief_kept(small) -> None:
    f = PCFilter(pendulum_model(DT, dtype=torch.float64), small_path=small)
    f.reset(np.array([0.1, 0.0]), np.eye(2))
    before = f.belief
    with pytest.raises(DTypeError, match="complex"):
        f.update(np.array([1.0 + 1j, 0.0]), np.array([0.0]))
    with pytest.raises(DTypeError, match="complex"):
        f.update(torch.zeros(2, dtype=torch.complex128), np.array([0.0]))
    with pytest.raises(DTypeError, match="complex"):
        f.update(np.zeros(2), np.array([1j]))
    assert torch.equal(f.belief.mean, before.mean) and torch.equal(f.belief.cov, before.cov)


def test_numpy_path_reads_any_real_tensor_dtype_like_the_torch_path() -> None:
    model = pendulum_model(DT, dtype=torch.float64)
    for dtype in (torch.bfloat16, torch.float32, torch.int64):
        beliefs = []
        for small in (True, False):
            f = PCFilter(model, small_path=small)
            f.reset(np.array([0.1, 0.0]), np.eye(2))
            beliefs.append(f.update(torch.tensor([1, 0], dtype=dtype), torch.tensor([1], dtype=dtype)))
        torch.testing.assert_close(beliefs[0].mean, beliefs[1].mean, rtol=1e-10, atol=1e-10)


def test_numpy_path_rejects_what_the_torch_path_rejects() -> None:
    model = pendulum_model(DT, dtype=torch.float64)
    for small in (True, False):
        f = PCFilter(model, small_path=small)
        f.reset(np.array([0.1, 0.0]), np.eye(2))
        before = f.belief
        for obs, action, argument in (([np.inf, 0.0], [0.0], "obs"), ([0.0, 0.0], [np.nan], "action"),
                                      ([0.0], [0.0], "obs"), ([0.0, 0.0], None, "action"),
                                      ("xy", [0.0], "obs"), ([0.0, 0.0], [[0.0]], "action")):
            with pytest.raises(InvalidArgumentError) as info:
                f.update(np.asarray(obs) if not isinstance(obs, str) else obs, action)
            assert info.value.argument == argument, (small, obs, action)
        assert torch.equal(f.belief.mean, before.mean) and torch.equal(f.belief.cov, before.cov)
    f = PCFilter(model)
    f.reset(np.zeros(2), np.eye(2))
    f._np_belief = (np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))  # an indefinite covariance
    with pytest.raises(NotPositiveDefiniteError):
        f.correct(np.array([1.0, 0.0]))
