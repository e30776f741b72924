"""Analytic pendulum Jacobians and the Gauss-Newton relaxation's line search, against independent references.

References: autograd (``batched_jacobian``) for the Jacobians, the textbook pendulum step in
numpy for the dynamics, the same model with autograd Jacobians for whole filter runs, and a
bisection on the derivative of a 1-D energy for the backtracking line search.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcctrl.estimation import PCFilter
from pcctrl.models import StateSpaceModel, batched_jacobian, pendulum_model
from pcctrl.models.pendulum import PendulumModel

DT, G = 0.05, 10.0


def pendulum_np(x: np.ndarray, u: float) -> np.ndarray:
    theta, omega = x
    new_omega = float(np.clip(omega + (1.5 * G * np.sin(theta) + 3 * float(np.clip(u, -2, 2))) * DT, -8, 8))
    return np.array([theta + new_omega * DT, new_omega])


def probe_states(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Random states and torques plus the speed clip's edge cases: exactly at +-8, beyond it, torque clipped."""
    gen = torch.Generator().manual_seed(3)
    s = torch.cat((torch.rand(64, 2, generator=gen, dtype=torch.float64) * torch.tensor([12.0, 20.0]) - torch.tensor([6.0, 10.0]),
                   torch.tensor([[0.0, 8.0], [0.0, -8.0], [0.0, 9.0], [1.0, -12.0], [0.5, 0.0]], dtype=torch.float64)))
    a = torch.cat((torch.rand(64, 1, generator=gen, dtype=torch.float64) * 6 - 3,
                   torch.tensor([[0.0], [0.0], [0.0], [1.0], [5.0]], dtype=torch.float64)))
    return s.to(dtype), a.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_analytic_jacobians_equal_autograd(dtype: torch.dtype) -> None:
    model = pendulum_model(DT, G, dtype=dtype)
    assert isinstance(model, PendulumModel)
    s, a = probe_states(dtype)
    out, jac = model.linearize_transition(s, a)
    ref_out, ref_jac = batched_jacobian(lambda x: model.transition(x, a), s)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out, ref_out, rtol=tol, atol=tol)
    torch.testing.assert_close(jac, ref_jac, rtol=tol, atol=tol)
    assert jac[-5:-3, 1, 1].tolist() == [1.0, 1.0] and jac[-3:-1, 1, 1].tolist() == [0.0, 0.0]
    y, g_jac = model.linearize_observation(s)
    ref_y, ref_g = batched_jacobian(model.observe, s)
    torch.testing.assert_close(y, ref_y, rtol=tol, atol=tol)
    torch.testing.assert_close(g_jac, ref_g, rtol=tol, atol=tol)


def test_pendulum_model_is_the_textbook_step() -> None:
    model = pendulum_model(DT, G, dtype=torch.float64)
    s, a = probe_states(torch.float64)
    expected = np.array([pendulum_np(x, float(u[0])) for x, u in zip(s.numpy(), a.numpy())])
    np.testing.assert_allclose(model.transition(s, a).numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.observe(s).numpy(), np.stack((np.cos(s[:, 0].numpy()), np.sin(s[:, 0].numpy())), -1), atol=1e-15)


def test_analytic_model_filters_like_the_autograd_model() -> None:
    analytic = pendulum_model(DT, G, obs_noise_std=0.3, process_noise_std=0.1, dtype=torch.float64)
    generic = StateSpaceModel(analytic.transition, analytic.observe, state_dim=2, obs_dim=2, action_dim=1,
                              process_cov=analytic.process_cov(), obs_cov=analytic.obs_cov(), dtype=torch.float64)
    rng = np.random.default_rng(7)
    x, readings, torques = np.array([2.5, 0.0]), [], []
    for _ in range(120):
        u = rng.uniform(-2, 2)
        x = pendulum_np(x, u) + np.array([0.0, 0.1 * rng.normal()])
        torques.append([u])
        readings.append([np.cos(x[0]), np.sin(x[0])] + 0.3 * rng.normal(size=2))
    means = []
    for model in (analytic, generic):
        filt = PCFilter(model)
        filt.reset(np.array([[2.0, 0.0], [-1.0, 1.0]]), np.diag([1.0, 1.0]), batch_size=2)
        out = [filt.update(np.array([z, z[::-1]]), np.array([u, u])) for z, u in zip(readings, torques)]
        means.append((np.stack([b.mean.numpy() for b in out]), np.stack([b.cov.numpy() for b in out])))
    np.testing.assert_allclose(means[0][0], means[1][0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(means[0][1], means[1][1], rtol=1e-10, atol=1e-12)


def cubic_energy_minimum(mu: float, obs: float, prior_var: float, obs_var: float) -> float:
    """Bisection on ``E'(s) = -3 s^2 (obs - s^3) / obs_var + (s - mu) / prior_var`` near ``obs^(1/3)``."""
    lo, hi = 0.5, 1.5
    grad = lambda s: -3 * s * s * (obs - s**3) / obs_var + (s - mu) / prior_var  # noqa: E731
    assert grad(lo) < 0 < grad(hi)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if grad(mid) < 0 else (lo, mid)
    return 0.5 * (lo + hi)


def test_backtracking_line_search_reaches_the_energy_minimum() -> None:
    # With a sharp sensor g(s) = s^3 the full Gauss-Newton step from 0.3 overshoots (the energy
    # rises) and must be halved; from the other starts it does not.
    model = StateSpaceModel(lambda s, a: s, lambda s: s**3, 1, 1, process_cov=0.01, obs_cov=1e-4, dtype=torch.float64)
    starts = [0.3, -0.5, 2.0]
    filt = PCFilter(model, iters=30)
    filt.reset(torch.tensor(starts, dtype=torch.float64).unsqueeze(-1), torch.ones(3, 1, 1, dtype=torch.float64))
    batched = filt.correct(torch.ones(3, 1, dtype=torch.float64)).mean[:, 0].numpy()
    expected = [cubic_energy_minimum(mu, 1.0, 1.0, 1e-4) for mu in starts]
    np.testing.assert_allclose(batched, expected, rtol=1e-8)
    energy = lambda s: 0.5 * (1.0 - s**3) ** 2 / 1e-4 + 0.5 * (s - 0.3) ** 2  # noqa: E731
    first_steps = []
    for halvings in (0, 4):
        one_step = PCFilter(model, iters=1, max_halvings=halvings)
        one_step.reset(torch.tensor([0.3], dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64))
        first_steps.append(float(one_step.correct(torch.ones(1, dtype=torch.float64)).mean[0]))
    assert energy(first_steps[0]) > energy(0.3) > energy(first_steps[1])
    for row, mu in enumerate(starts):
        filt.reset(torch.tensor([mu], dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64))
        np.testing.assert_allclose(filt.correct(torch.ones(1, dtype=torch.float64)).mean.numpy(), batched[row:row + 1],
                                   rtol=1e-12)
