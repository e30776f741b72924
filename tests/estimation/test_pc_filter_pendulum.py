"""Nonlinear filtering: the Laplace PC filter on NoisyPendulum against textbook EKF and UKF.

The pendulum is observed only through a noisy ``[cos theta, sin theta]`` sensor (no velocity).
The EKF and UKF below are written from the textbook equations (Simon, "Optimal State
Estimation", ch. 13-14), in numpy, with hand-derived Jacobians: independent of pcctrl.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcctrl.envs.rollout import random_rollout
from pcctrl.estimation import PCFilter
from pcctrl.models import pendulum_model

DT, G = 0.05, 10.0
OBS_STD, PROC_STD = 0.3, 0.1
EPISODES, STEPS = 16, 200


def simulate(seed: int) -> dict[str, np.ndarray]:
    """One episode of the env with random torques: states, actions, readings."""
    run = random_rollout("pcctrl/NoisyPendulum-v0", STEPS, seed, obs_noise_std=OBS_STD, process_noise_std=PROC_STD)
    return {"s": run.states, "a": run.actions, "o": run.observations}


def f_np(x: np.ndarray, u: float) -> tuple[np.ndarray, np.ndarray]:
    """Pendulum step and its Jacobian."""
    theta, omega = x
    u = float(np.clip(u, -2, 2))
    raw = omega + (1.5 * G * np.sin(theta) + 3 * u) * DT
    clipped = not -8 < raw < 8
    new_omega = float(np.clip(raw, -8, 8))
    c = 0.0 if clipped else 1.0
    d_omega = np.array([c * 1.5 * G * np.cos(theta) * DT, c])
    jac = np.array([[1 + DT * d_omega[0], DT * d_omega[1]], d_omega])
    return np.array([theta + new_omega * DT, new_omega]), jac


def h_np(x: np.ndarray) -> np.ndarray:
    return np.array([np.cos(x[0]), np.sin(x[0])])


def q_matrix() -> np.ndarray:
    var = PROC_STD**2
    return np.array([[var * DT * DT, var * DT], [var * DT, var + 1e-6]])


R = OBS_STD**2 * np.eye(2)


def initial_belief(o0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.array([np.arctan2(o0[1], o0[0]), 0.0]), np.diag([OBS_STD**2, 1.0])


def ekf(data: dict[str, np.ndarray]) -> np.ndarray:
    """Extended Kalman filter (Joseph-form update)."""
    x, P = initial_belief(data["o"][0])
    out = []
    for t, z in enumerate(data["o"]):
        if t > 0:
            x, F = f_np(x, data["a"][t - 1][0])
            P = F @ P @ F.T + q_matrix()
        H = np.array([[-np.sin(x[0]), 0.0], [np.cos(x[0]), 0.0]])
        S = H @ P @ H.T + R
        K = P @ H.T @ np.linalg.inv(S)
        x = x + K @ (z - h_np(x))
        I_KH = np.eye(2) - K @ H
        P = I_KH @ P @ I_KH.T + K @ R @ K.T
        out.append(x)
    return np.array(out)


def ukf(data: dict[str, np.ndarray], alpha: float = 1.0, beta: float = 2.0, kappa: float = 1.0) -> np.ndarray:
    """Unscented Kalman filter with scaled sigma points (van der Merwe)."""
    n = 2
    lam = alpha**2 * (n + kappa) - n
    wm = np.full(2 * n + 1, 0.5 / (n + lam))
    wc = wm.copy()
    wm[0] = lam / (n + lam)
    wc[0] = wm[0] + 1 - alpha**2 + beta

    def sigma(x: np.ndarray, P: np.ndarray) -> np.ndarray:
        root = np.linalg.cholesky((n + lam) * P)
        return np.vstack([x, x + root.T, x - root.T])

    x, P = initial_belief(data["o"][0])
    out = []
    for t, z in enumerate(data["o"]):
        if t > 0:
            chi = np.array([f_np(c, data["a"][t - 1][0])[0] for c in sigma(x, P)])
            x = wm @ chi
            d = chi - x
            P = (wc[:, None] * d).T @ d + q_matrix()
        chi = sigma(x, P)
        zs = np.array([h_np(c) for c in chi])
        z_mean = wm @ zs
        dz, dx = zs - z_mean, chi - x
        S = (wc[:, None] * dz).T @ dz + R
        Pxz = (wc[:, None] * dx).T @ dz
        K = Pxz @ np.linalg.inv(S)
        x = x + K @ (z - z_mean)
        P = P - K @ S @ K.T
        out.append(x)
    return np.array(out)


def pc_filter(episodes: list[dict[str, np.ndarray]], mode: str = "laplace") -> np.ndarray:
    """All episodes at once, as one batched PC filter."""
    model = pendulum_model(dt=DT, g=G, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=torch.float64)
    filt = PCFilter(model, mode=mode, prior_precision=None if mode == "laplace" else np.linalg.inv(q_matrix()))
    starts = [initial_belief(e["o"][0]) for e in episodes]
    readings = np.stack([e["o"] for e in episodes], axis=1)
    actions = np.stack([e["a"] for e in episodes], axis=1)
    beliefs = filt.run(readings, actions, np.array([m for m, _ in starts]), np.array([c for _, c in starts]))
    return beliefs.mean.numpy().swapaxes(0, 1)


def rmse(estimates: np.ndarray, states: np.ndarray) -> float:
    """Root mean squared error over angle (wrapped) and angular velocity."""
    err = estimates - states
    err[..., 0] = (err[..., 0] + np.pi) % (2 * np.pi) - np.pi
    return float(np.sqrt(np.mean(np.sum(err**2, axis=-1))))


@pytest.fixture(scope="module")
def episodes() -> list[dict[str, np.ndarray]]:
    return [simulate(seed) for seed in range(EPISODES)]


@pytest.fixture(scope="module")
def results(episodes: list[dict[str, np.ndarray]]) -> dict[str, float]:
    states = np.stack([e["s"] for e in episodes])
    return {
        "laplace": rmse(pc_filter(episodes), states),
        "ekf": rmse(np.stack([ekf(e) for e in episodes]), states),
        "ukf": rmse(np.stack([ukf(e) for e in episodes]), states),
        "sensor_only": rmse(np.stack([np.stack([np.arctan2(e["o"][:, 1], e["o"][:, 0]), np.zeros(STEPS + 1)], -1)
                                      for e in episodes]), states),
    }


def test_laplace_beats_ekf_and_ukf(results: dict[str, float]) -> None:
    assert results["laplace"] <= results["ekf"], results
    assert results["laplace"] <= results["ukf"], results


def test_filter_beats_the_sensor_alone(results: dict[str, float]) -> None:
    # Baseline without a model: the sensed angle, and zero for the never-sensed velocity.
    assert results["laplace"] < 0.25 * results["sensor_only"], results


def test_single_filter_equals_its_row_in_the_batch(episodes: list[dict[str, np.ndarray]]) -> None:
    batched = pc_filter(episodes[:3])
    single = pc_filter(episodes[1:2])
    np.testing.assert_allclose(single[0], batched[1], rtol=1e-9, atol=1e-9)


def test_laplace_first_step_is_the_ekf_step() -> None:
    # With one Gauss-Newton iteration the Laplace filter is exactly the EKF.
    data = simulate(99)
    model = pendulum_model(dt=DT, g=G, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=torch.float64)
    filt = PCFilter(model, iters=1, max_halvings=0)
    mean, cov = initial_belief(data["o"][0])
    out = filt.run(data["o"][:40], data["a"][:39], mean, cov).mean.numpy()
    reference = ekf({"o": data["o"][:40], "a": data["a"][:39]})
    np.testing.assert_allclose(out, reference, rtol=1e-8, atol=1e-10)
