"""The Laplace PC filter on linear-Gaussian models is the Kalman filter.

The reference is a Kalman filter written here from the textbook equations (Kalman 1960;
Simon, "Optimal State Estimation", ch. 5), in numpy, with the Joseph-form covariance update.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcctrl.estimation import PCFilter
from pcctrl.models import LinearGaussianModel, StateSpaceModel


class KalmanFilter:
    """Textbook Kalman filter; NaN readings are dropped (rows of C and R removed)."""

    def __init__(self, A, B, C, Q, R, mean, cov) -> None:
        self.A, self.B, self.C, self.Q, self.R = A, B, C, Q, R
        self.x, self.P = np.array(mean, dtype=float), np.array(cov, dtype=float)

    def predict(self, u) -> None:
        self.x = self.A @ self.x + (self.B @ u if self.B.shape[1] else 0.0)
        self.P = self.A @ self.P @ self.A.T + self.Q

    def correct(self, z) -> None:
        keep = ~np.isnan(z)
        if not keep.any():
            return
        C, R, z = self.C[keep], self.R[np.ix_(keep, keep)], z[keep]
        S = C @ self.P @ C.T + R
        K = self.P @ C.T @ np.linalg.inv(S)
        self.x = self.x + K @ (z - C @ self.x)
        I_KC = np.eye(len(self.x)) - K @ C
        self.P = I_KC @ self.P @ I_KC.T + K @ R @ K.T


def random_system(seed: int, n: int, p: int, m: int) -> dict[str, np.ndarray]:
    """A random stable system (spectral radius 0.95) with random SPD noise covariances."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    A *= 0.95 / max(abs(np.linalg.eigvals(A)))
    L = rng.normal(size=(n, n)) * 0.3
    M = rng.normal(size=(p, p)) * 0.3
    return {
        "A": A, "B": rng.normal(size=(n, m)), "C": rng.normal(size=(p, n)),
        "Q": L @ L.T + 0.05 * np.eye(n), "R": M @ M.T + 0.1 * np.eye(p),
        "mean": rng.normal(size=n), "cov": np.eye(n) * 2.0,
    }


def simulate(sys: dict[str, np.ndarray], steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 1000)
    n, m = sys["B"].shape
    x = rng.multivariate_normal(sys["mean"], sys["cov"])
    us, zs = [], []
    for _ in range(steps):
        u = rng.normal(size=m)
        x = sys["A"] @ x + sys["B"] @ u + rng.multivariate_normal(np.zeros(n), sys["Q"])
        zs.append(sys["C"] @ x + rng.multivariate_normal(np.zeros(len(sys["R"])), sys["R"]))
        us.append(u)
    return np.array(us), np.array(zs)


CASES = [(seed, n, p, m) for seed, (n, p, m) in enumerate(
    [(2, 1, 1), (3, 2, 0), (4, 2, 2), (5, 3, 1), (6, 6, 2), (7, 2, 1), (8, 4, 2), (8, 8, 0)])]


@pytest.mark.parametrize("seed,n,p,m", CASES)
def test_laplace_matches_kalman(seed: int, n: int, p: int, m: int) -> None:
    sys = random_system(seed, n, p, m)
    us, zs = simulate(sys, 40, seed)
    kf = KalmanFilter(sys["A"], sys["B"], sys["C"], sys["Q"], sys["R"], sys["mean"], sys["cov"])
    filt = PCFilter(LinearGaussianModel(sys["A"], sys["B"] if m else None, sys["C"], sys["Q"], sys["R"]))
    filt.reset(sys["mean"], sys["cov"])
    for u, z in zip(us, zs):
        kf.predict(u)
        kf.correct(z)
        belief = filt.update(z, u if m else None)
        np.testing.assert_allclose(belief.mean.numpy(), kf.x, rtol=0, atol=1e-6 * (1 + abs(kf.x).max()))
        np.testing.assert_allclose(belief.cov.numpy(), kf.P, rtol=0, atol=1e-6 * (1 + abs(kf.P).max()))


@pytest.mark.parametrize("seed,n,p,m", CASES[::3])
def test_general_gauss_newton_path_matches_kalman(seed: int, n: int, p: int, m: int) -> None:
    # The same system as plain functions: autograd Jacobians and Gauss-Newton relaxation.
    sys = random_system(seed, n, p, m)
    us, zs = simulate(sys, 25, seed)
    A, B, C = (torch.tensor(sys[k]) for k in "ABC")
    model = StateSpaceModel(lambda s, a: s @ A.T + a @ B.T, lambda s: s @ C.T, n, p, m,
                            process_cov=sys["Q"], obs_cov=sys["R"])
    kf = KalmanFilter(sys["A"], sys["B"], sys["C"], sys["Q"], sys["R"], sys["mean"], sys["cov"])
    filt = PCFilter(model)
    filt.reset(sys["mean"], sys["cov"])
    for u, z in zip(us, zs):
        kf.predict(u)
        kf.correct(z)
        belief = filt.update(z, u)
    np.testing.assert_allclose(belief.mean.numpy(), kf.x, atol=1e-6 * (1 + abs(kf.x).max()))
    np.testing.assert_allclose(belief.cov.numpy(), kf.P, atol=1e-6 * (1 + abs(kf.P).max()))


def test_batched_filters_match_independent_kalman_filters() -> None:
    n, p, m, batch = 4, 2, 1, 5
    sys = random_system(11, n, p, m)
    runs = [simulate(sys, 30, seed) for seed in range(batch)]
    rng = np.random.default_rng(3)
    means = rng.normal(size=(batch, n))
    kfs = [KalmanFilter(sys["A"], sys["B"], sys["C"], sys["Q"], sys["R"], means[i], sys["cov"]) for i in range(batch)]
    filt = PCFilter(LinearGaussianModel(sys["A"], sys["B"], sys["C"], sys["Q"], sys["R"]))
    filt.reset(means, sys["cov"])
    assert filt.batch_size == batch
    for t in range(30):
        zs = np.stack([runs[i][1][t] for i in range(batch)])
        us = np.stack([runs[i][0][t] for i in range(batch)])
        belief = filt.update(zs, us)
        for i, kf in enumerate(kfs):
            kf.predict(us[i])
            kf.correct(zs[i])
            np.testing.assert_allclose(belief.mean[i].numpy(), kf.x, atol=1e-8)
            np.testing.assert_allclose(belief.cov[i].numpy(), kf.P, atol=1e-8)


def test_missing_entries_coast_on_the_model() -> None:
    n, p, m = 5, 3, 1
    sys = random_system(5, n, p, m)
    us, zs = simulate(sys, 40, 5)
    rng = np.random.default_rng(8)
    zs[rng.random(zs.shape) < 0.3] = np.nan
    zs[7] = np.nan  # one step with no reading at all
    model = LinearGaussianModel(sys["A"], sys["B"], sys["C"], sys["Q"], sys["R"])
    kf = KalmanFilter(sys["A"], sys["B"], sys["C"], sys["Q"], sys["R"], sys["mean"], sys["cov"])
    filters = [PCFilter(model), PCFilter(StateSpaceModel(model.transition, model.observe, n, p, m,
                                                         process_cov=sys["Q"], obs_cov=sys["R"]))]
    for filt in filters:
        filt.reset(sys["mean"], sys["cov"])
    for u, z in zip(us, zs):
        kf.predict(u)
        kf.correct(z)
        for filt in filters:
            belief = filt.update(z, u)
            np.testing.assert_allclose(belief.mean.numpy(), kf.x, atol=1e-8)
            np.testing.assert_allclose(belief.cov.numpy(), kf.P, atol=1e-8)


def test_predict_and_correct_halves() -> None:
    sys = random_system(2, 3, 2, 1)
    us, zs = simulate(sys, 5, 2)
    kf = KalmanFilter(sys["A"], sys["B"], sys["C"], sys["Q"], sys["R"], sys["mean"], sys["cov"])
    filt = PCFilter(LinearGaussianModel(sys["A"], sys["B"], sys["C"], sys["Q"], sys["R"]))
    filt.reset(sys["mean"], sys["cov"])
    kf.correct(zs[0])
    np.testing.assert_allclose(filt.correct(zs[0]).mean.numpy(), kf.x, atol=1e-10)
    kf.predict(us[0])
    belief = filt.predict(us[0])
    np.testing.assert_allclose(belief.mean.numpy(), kf.x, atol=1e-10)
    np.testing.assert_allclose(belief.cov.numpy(), kf.P, atol=1e-10)


def test_float32_model_tracks_float64_kalman() -> None:
    sys = random_system(4, 4, 2, 1)
    us, zs = simulate(sys, 50, 4)
    kf = KalmanFilter(sys["A"], sys["B"], sys["C"], sys["Q"], sys["R"], sys["mean"], sys["cov"])
    model = LinearGaussianModel(sys["A"], sys["B"], sys["C"], sys["Q"], sys["R"], dtype=torch.float32)
    filt = PCFilter(model)
    filt.reset(sys["mean"], sys["cov"])
    for u, z in zip(us, zs):
        kf.predict(u)
        kf.correct(z)
        belief = filt.update(z, u)
    assert belief.mean.dtype == torch.float32
    np.testing.assert_allclose(belief.mean.numpy(), kf.x, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(belief.cov.numpy(), kf.P, rtol=1e-3, atol=1e-3)


def constant_acceleration(dt: float = 0.1) -> dict[str, np.ndarray]:
    """3-D state ``[position, velocity, acceleration]``, all three sensed; Q = R = I."""
    A = np.array([[1, dt, dt * dt / 2], [0, 1, dt], [0, 0, 1]])
    return {"A": A, "B": np.zeros((3, 0)), "C": np.eye(3), "Q": np.eye(3), "R": np.eye(3)}


def test_constant_acceleration_tracking_mse_within_one_percent_of_kalman() -> None:
    seeds, steps = 10, 2000
    sys = constant_acceleration()
    states, readings = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        x, xs, zs = np.zeros(3), [], []
        for _ in range(steps):
            x = sys["A"] @ x + rng.normal(size=3)
            xs.append(x)
            zs.append(x + rng.normal(size=3))
        states.append(xs)
        readings.append(zs)
    states, readings = np.array(states), np.array(readings)
    kf_est = []
    for seed in range(seeds):
        kf = KalmanFilter(sys["A"], sys["B"], sys["C"], sys["Q"], sys["R"], np.zeros(3), np.eye(3))
        out = []
        for z in readings[seed]:
            kf.predict(np.zeros(0))
            kf.correct(z)
            out.append(kf.x)
        kf_est.append(out)
    mse = {"kf": float(np.mean((np.array(kf_est) - states) ** 2))}
    model = LinearGaussianModel(sys["A"], None, sys["C"], sys["Q"], sys["R"])
    for mode in ("laplace", "fixed"):
        filt = PCFilter(model, mode=mode)
        filt.reset(np.zeros(3), np.eye(3), batch_size=seeds)
        est = np.stack([filt.update(readings[:, t]).mean.numpy() for t in range(steps)], axis=1)
        mse[mode] = float(np.mean((est - states) ** 2))
    assert abs(mse["laplace"] / mse["kf"] - 1) <= 0.01, mse
    assert mse["fixed"] >= mse["kf"], mse  # the Kalman filter is optimal; temporal PC cannot beat it
