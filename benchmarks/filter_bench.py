"""PC filter benchmark: accuracy against filterpy's KF/EKF/UKF, latency at batch 1, throughput at batch 1024.

Run: ``python benchmarks/filter_bench.py [--threads 1 2] [--quick] [--device cpu|cuda]`` (needs the
``[bench]`` extra: filterpy). Prints one table per section. Bars (issue 12): pendulum RMSE <= EKF
and UKF; nonlinear pendulum update <= 150 us median at batch 1 (CPU, one thread); linear 4-D <= 50 us.
Batch-1 rows show the default path (the float64 numpy Gauss-Newton path on CPU) beside the
general torch path (``small_path=False``), timed in the same run. ``--device cuda`` puts the PC
filters' models on the GPU (torch path: the numpy path is CPU only); filterpy rows stay on the CPU.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from filterpy.kalman import ExtendedKalmanFilter, KalmanFilter, MerweScaledSigmaPoints, UnscentedKalmanFilter

from pcctrl.envs.rollout import random_rollout
from pcctrl.estimation import PCFilter
from pcctrl.models import LinearGaussianModel, pendulum_model

DT, OBS_STD, PROC_STD = 0.05, 0.3, 0.1


DEVICE = torch.device("cpu")


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timeit(fn: Callable[[], object], repeats: int, warmup: int | None = None) -> float:
    """Median over 5 rounds of the mean seconds per call."""
    for _ in range(max(repeats // 10, 20) if warmup is None else warmup):
        fn()
    rounds = []
    for _ in range(5):
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync()
        rounds.append((time.perf_counter() - start) / repeats)
    return float(np.median(rounds))


# ---- linear: constant-acceleration tracking ---------------------------------------------------

def tracking(seeds: int, steps: int) -> dict[str, float]:
    dt = 0.1
    A = np.array([[1, dt, dt * dt / 2], [0, 1, dt], [0, 0, 1]])
    states, readings = np.zeros((seeds, steps, 3)), np.zeros((seeds, steps, 3))
    for seed in range(seeds):
        rng, x = np.random.default_rng(seed), np.zeros(3)
        for t in range(steps):
            x = A @ x + rng.normal(size=3)
            states[seed, t], readings[seed, t] = x, x + rng.normal(size=3)
    kf_est = np.zeros_like(states)
    for seed in range(seeds):
        kf = KalmanFilter(dim_x=3, dim_z=3)
        kf.F, kf.H, kf.Q, kf.R, kf.P, kf.x = A, np.eye(3), np.eye(3), np.eye(3), np.eye(3), np.zeros(3)
        for t in range(steps):
            kf.predict()
            kf.update(readings[seed, t])
            kf_est[seed, t] = kf.x
    mse = {"KF (filterpy)": float(np.mean((kf_est - states) ** 2))}
    model = LinearGaussianModel(A, None, np.eye(3), np.eye(3), np.eye(3)).to(DEVICE)
    for mode in ("laplace", "fixed"):
        filt = PCFilter(model, mode=mode)
        filt.reset(np.zeros(3), np.eye(3), batch_size=seeds)
        est = np.stack([filt.update(readings[:, t]).mean.cpu().numpy() for t in range(steps)], axis=1)
        mse[f"PC {mode}"] = float(np.mean((est - states) ** 2))
    return mse


# ---- nonlinear: pendulum with a noisy angle sensor ---------------------------------------------

def pendulum_np(x: np.ndarray, u: float) -> tuple[np.ndarray, np.ndarray]:
    theta, omega = x
    raw = omega + (15.0 * np.sin(theta) + 3 * float(np.clip(u, -2, 2))) * DT
    c = 1.0 if -8 < raw < 8 else 0.0
    new = float(np.clip(raw, -8, 8))
    d = np.array([c * 15.0 * np.cos(theta) * DT, c])
    return np.array([theta + new * DT, new]), np.array([[1 + DT * d[0], DT * d[1]], d])


def h_np(x: np.ndarray) -> np.ndarray:
    return np.array([np.cos(x[0]), np.sin(x[0])])


def h_jac(x: np.ndarray) -> np.ndarray:
    return np.array([[-np.sin(x[0]), 0.0], [np.cos(x[0]), 0.0]])


Q_PEND = np.array([[PROC_STD**2 * DT * DT, PROC_STD**2 * DT], [PROC_STD**2 * DT, PROC_STD**2 + 1e-6]])
R_PEND = OBS_STD**2 * np.eye(2)


class PendulumEKF(ExtendedKalmanFilter):
    """filterpy's EKF with the pendulum's nonlinear prediction."""

    def predict_x(self, u: np.ndarray = 0) -> None:
        self.x = pendulum_np(self.x, float(np.ravel(u)[0]))[0]

    def step(self, z: np.ndarray, u: np.ndarray | None) -> None:
        if u is not None:
            self.F = pendulum_np(self.x, float(u[0]))[1]
            self.predict(u)
        self.update(z, h_jac, h_np)


def make_ukf(x: np.ndarray, P: np.ndarray) -> UnscentedKalmanFilter:
    points = MerweScaledSigmaPoints(2, alpha=1.0, beta=2.0, kappa=1.0)
    ukf = UnscentedKalmanFilter(2, 2, DT, h_np, lambda s, dt, u=0.0: pendulum_np(s, u)[0], points)
    ukf.x, ukf.P, ukf.Q, ukf.R = x.copy(), P.copy(), Q_PEND, R_PEND
    return ukf


def record(seed: int, steps: int = 200) -> dict[str, np.ndarray]:
    run = random_rollout("pcctrl/NoisyPendulum-v0", steps, seed, obs_noise_std=OBS_STD, process_noise_std=PROC_STD)
    return {"s": run.states, "a": run.actions, "o": run.observations}


def rmse(est: np.ndarray, states: np.ndarray) -> float:
    err = est - states
    err[..., 0] = (err[..., 0] + np.pi) % (2 * np.pi) - np.pi
    return float(np.sqrt(np.mean(np.sum(err**2, axis=-1))))


def start(o0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.array([np.arctan2(o0[1], o0[0]), 0.0]), np.diag([OBS_STD**2, 1.0])


def pendulum(episodes: int) -> dict[str, float]:
    data = [record(seed) for seed in range(episodes)]
    states = np.stack([d["s"] for d in data])
    ekf_est, ukf_est = [], []
    for d in data:
        x0, P0 = start(d["o"][0])
        ekf = PendulumEKF(2, 2)
        ekf.x, ekf.P, ekf.Q, ekf.R = x0.copy(), P0.copy(), Q_PEND, R_PEND
        ukf = make_ukf(x0, P0)
        e_out, u_out = [], []
        for t, z in enumerate(d["o"]):
            ekf.step(z, d["a"][t - 1] if t else None)
            if t:
                ukf.predict(u=float(d["a"][t - 1][0]))
            else:
                ukf.sigmas_f = ukf.points_fn.sigma_points(ukf.x, ukf.P)
            ukf.update(z)
            e_out.append(ekf.x.copy())
            u_out.append(ukf.x.copy())
        ekf_est.append(e_out)
        ukf_est.append(u_out)
    out = {"EKF (filterpy)": rmse(np.array(ekf_est), states), "UKF (filterpy)": rmse(np.array(ukf_est), states)}
    model = pendulum_model(DT, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=torch.float64).to(DEVICE)
    starts = [start(d["o"][0]) for d in data]
    readings = np.stack([d["o"] for d in data], axis=1)
    actions = np.stack([d["a"] for d in data], axis=1)
    for mode in ("laplace", "fixed"):
        filt = PCFilter(model, mode=mode, prior_precision=None if mode == "laplace" else np.linalg.inv(Q_PEND))
        est = filt.run(readings, actions, np.stack([m for m, _ in starts]), np.stack([c for _, c in starts]))
        out[f"PC {mode}"] = rmse(est.mean.cpu().numpy().swapaxes(0, 1), states)
    # The batch-1 numpy path (one filter per episode) must land on the same estimates.
    if DEVICE.type == "cpu":
        single = [PCFilter(model).run(d["o"], d["a"], *start(d["o"][0])).mean.numpy() for d in data]
        out["PC laplace, one filter per episode (numpy path)"] = rmse(np.stack(single), states)
    return out


# ---- speed -------------------------------------------------------------------------------------

def linear_tracking_model(dtype: torch.dtype) -> tuple[LinearGaussianModel, object]:
    env = gym.make("pcctrl/LinearTracking-v0").unwrapped
    return LinearGaussianModel(env.A, env.B, env.C, env.Q, env.R, dtype=dtype).to(DEVICE), env


def paths() -> list[tuple[str, bool]]:
    """(label, small_path): the default (numpy on CPU) and the general torch path."""
    return [("default", True), ("torch path", False)] if DEVICE.type == "cpu" else [(f"torch, {DEVICE.type}", False)]


def latency(repeats: int) -> dict[str, float]:
    out = {}
    for dtype in (torch.float64, torch.float32):
        model, env = linear_tracking_model(dtype)
        for label, small in paths():
            filt = PCFilter(model, small_path=small)
            obs = torch.tensor([0.1, -0.2], dtype=dtype, device=DEVICE)
            act = torch.tensor([0.3, 0.1], dtype=dtype, device=DEVICE)
            out[f"PC laplace, LinearTracking (4-D), {str(dtype)[6:]}, {label}, tensors"] = timeit(
                lambda: filt.update(obs, act), repeats)
            obs_np, act_np = obs.cpu().numpy(), act.cpu().numpy()
            out[f"PC laplace, LinearTracking (4-D), {str(dtype)[6:]}, {label}, numpy"] = timeit(
                lambda: filt.update(obs_np, act_np), repeats)
    kf = KalmanFilter(dim_x=4, dim_z=2, dim_u=2)
    kf.F, kf.B, kf.H, kf.Q, kf.R = env.A, env.B, env.C, env.Q, env.R
    z, u = np.array([0.1, -0.2]), np.array([0.3, 0.1])

    def kf_step() -> None:
        kf.predict(u)
        kf.update(z)

    out["filterpy KF, LinearTracking (4-D)"] = timeit(kf_step, repeats)
    pend_model = pendulum_model(DT, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=torch.float64).to(DEVICE)
    zt = torch.tensor([0.9, 0.3], dtype=torch.float64, device=DEVICE)
    ut = torch.tensor([0.5], dtype=torch.float64, device=DEVICE)
    for label, small in paths():
        pend = PCFilter(pend_model, small_path=small)
        out[f"PC laplace, pendulum (2-D, nonlinear), float64, {label}, fixed input"] = timeit(
            lambda: pend.update(zt, ut), max(repeats // 10, 50))
    ekf = PendulumEKF(2, 2)
    ekf.x, ekf.P, ekf.Q, ekf.R = np.zeros(2), np.eye(2), Q_PEND, R_PEND
    ukf = make_ukf(np.zeros(2), np.eye(2))
    zn, un = zt.cpu().numpy(), ut.cpu().numpy()
    out["filterpy EKF, pendulum, fixed input"] = timeit(lambda: ekf.step(zn, un), repeats)

    def ukf_step() -> None:
        ukf.predict(u=0.5)
        ukf.update(zn)

    out["filterpy UKF, pendulum, fixed input"] = timeit(ukf_step, repeats)
    out.update(replay_latency(1))
    return out


def per_update(repeats: int) -> dict[str, tuple[float, float]]:
    """(median, p99) seconds of single ``update`` calls while replaying 4 recorded episodes of the
    pendulum and of LinearTracking (medians of single calls resist the shared machine's stalls)."""
    episodes = [record(seed) for seed in range(4)]
    out = {}
    clock = time.perf_counter
    for dtype in (torch.float64, torch.float32):
        model = pendulum_model(DT, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=dtype).to(DEVICE)
        for label, small in paths():
            pend = PCFilter(model, small_path=small)
            times = []
            for _ in range(repeats):
                for d in episodes:
                    # Timed one update at a time: run() would hide the per-update distribution.
                    pend.reset(*start(d["o"][0]))
                    pend.correct(d["o"][0])
                    for t in range(1, len(d["o"])):
                        begin = clock()
                        pend.update(d["o"][t], d["a"][t - 1])
                        sync()
                        times.append(clock() - begin)
            out[f"PC laplace, pendulum replay, {str(dtype)[6:]}, {label}"] = (
                float(np.median(times)), float(np.percentile(times, 99)))
    runs = [random_rollout("pcctrl/LinearTracking-v0", 200, seed) for seed in range(4)]
    model, _ = linear_tracking_model(torch.float64)
    for label, small in paths():
        filt = PCFilter(model, small_path=small)
        times = []
        for _ in range(repeats):
            for run in runs:
                readings = run.observations[:, :2]  # the env's observation is [y, reference]
                filt.reset()
                filt.correct(readings[0])
                for t in range(1, len(readings)):
                    begin = clock()
                    filt.update(readings[t], run.actions[t - 1])
                    sync()
                    times.append(clock() - begin)
        out[f"PC laplace, LinearTracking (4-D) replay, float64, {label}"] = (
            float(np.median(times)), float(np.percentile(times, 99)))
    return out


def replay_latency(repeats: int) -> dict[str, float]:
    """Mean seconds per update of ``PCFilter.run`` over 4 recorded episodes, and filterpy's."""
    episodes = [record(seed) for seed in range(4)]
    out = {}
    steps = sum(len(d["a"]) for d in episodes)
    for dtype in (torch.float64, torch.float32):
        model = pendulum_model(DT, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=dtype).to(DEVICE)
        for label, small in paths():
            pend = PCFilter(model, small_path=small)

            def pc_run() -> None:
                for d in episodes:
                    pend.run(d["o"], d["a"], *start(d["o"][0]))

            out[f"PC laplace, pendulum run(), {str(dtype)[6:]}, {label}"] = timeit(pc_run, repeats, warmup=1) / steps

    def ekf_run() -> None:
        for d in episodes:
            x0, P0 = start(d["o"][0])
            ekf = PendulumEKF(2, 2)
            ekf.x, ekf.P, ekf.Q, ekf.R = x0.copy(), P0.copy(), Q_PEND, R_PEND
            for t, z in enumerate(d["o"]):
                ekf.step(z, d["a"][t - 1] if t else None)

    def ukf_run() -> None:
        for d in episodes:
            ukf = make_ukf(*start(d["o"][0]))
            ukf.sigmas_f = ukf.points_fn.sigma_points(ukf.x, ukf.P)
            ukf.update(d["o"][0])
            for t in range(1, len(d["o"])):
                ukf.predict(u=float(d["a"][t - 1][0]))
                ukf.update(d["o"][t])

    out["filterpy EKF, pendulum replay"] = timeit(ekf_run, repeats, warmup=1) / steps
    out["filterpy UKF, pendulum replay"] = timeit(ukf_run, repeats, warmup=1) / steps
    return out


def throughput(batch: int, repeats: int) -> dict[str, float]:
    """Filter updates per second with ``batch`` filters in one batch (torch path)."""
    out = {}
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float64, torch.float32):
        model, _ = linear_tracking_model(dtype)
        filt = PCFilter(model)
        filt.reset(batch_size=batch)
        obs = torch.randn(batch, 2, generator=gen, dtype=dtype).to(DEVICE)
        act = torch.randn(batch, 2, generator=gen, dtype=dtype).to(DEVICE)
        out[f"PC laplace, LinearTracking, {str(dtype)[6:]}"] = batch / timeit(lambda: filt.update(obs, act), repeats)
    for dtype in (torch.float64, torch.float32):
        pend = PCFilter(pendulum_model(DT, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=dtype).to(DEVICE))
        angle = torch.rand(batch, generator=gen, dtype=dtype) * 6 - 3
        pend.reset(torch.stack((angle, torch.zeros_like(angle)), -1), torch.diag(torch.tensor([OBS_STD**2, 1.0])),
                   batch_size=batch)
        obs = torch.stack((angle.cos(), angle.sin()), -1) + OBS_STD * torch.randn(batch, 2, generator=gen,
                                                                                 dtype=dtype)
        act = torch.rand(batch, 1, generator=gen, dtype=dtype) * 4 - 2
        obs, act = obs.to(DEVICE), act.to(DEVICE)
        out[f"PC laplace, pendulum, {str(dtype)[6:]}"] = batch / timeit(lambda: pend.update(obs, act),
                                                                       max(repeats // 10, 10))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and repeats (smoke run)")
    parser.add_argument("--device", default="cpu", help="where the PC filters run (cpu or cuda)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    seeds, steps, episodes, repeats = (3, 300, 4, 200) if args.quick else (10, 2000, 32, 2000)
    torch.set_num_threads(1)
    print(f"# pcctrl filter benchmark — {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"python {platform.python_version()}, PC filters on {DEVICE}")
    mse = tracking(seeds, steps)
    print(f"\n## Constant-acceleration tracking (3-D state, Q = R = I, {steps} steps, {seeds} seeds), MSE")
    for name, value in mse.items():
        print(f"  {name:<16} MSE {value:9.4f}   ratio to KF {value / mse['KF (filterpy)']:.4f}"
              f"   RMSE ratio {np.sqrt(value / mse['KF (filterpy)']):.4f}")
    res = pendulum(episodes)
    print(f"\n## Pendulum, noisy [cos, sin] sensor only (std {OBS_STD}), {episodes} episodes x 200 steps, RMSE")
    for name, value in res.items():
        print(f"  {name:<48} RMSE {value:.4f}   / EKF {value / res['EKF (filterpy)']:.4f}"
              f"   / UKF {value / res['UKF (filterpy)']:.4f}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\n## Update latency, batch 1, PC filters on {args.device}, torch threads = {threads} "
              "(median of 5 rounds)")
        for name, value in latency(repeats).items():
            print(f"  {name:<72} {value * 1e6:9.1f} us")
        print(f"\n## Single update calls while replaying 4 recorded episodes, torch threads = {threads}: "
              "median, p99")
        for name, (med, p99) in per_update(1 if args.quick else 3).items():
            print(f"  {name:<72} {med * 1e6:9.1f} us   p99 {p99 * 1e6:9.1f} us")
        print(f"\n## Throughput, batch 1024, PC filters on {args.device}, torch threads = {threads}")
        for name, value in throughput(1024, max(repeats // 20, 20)).items():
            print(f"  {name:<72} {value / 1e6:9.3f} M filter-updates/s")


if __name__ == "__main__":
    main()
