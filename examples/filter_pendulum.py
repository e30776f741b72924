"""Filter a pendulum seen only through a noisy angle sensor: PC filter (Laplace) beside an EKF.

Run: ``python examples/filter_pendulum.py [--out filter_pendulum.png] [--seed 0]``. Writes a PNG
with the true angle and angular velocity, the sensor's angle, and each filter's belief
mean +- 2 standard deviations.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from pcctrl.envs.rollout import random_rollout  # noqa: E402
from pcctrl.estimation import PCFilter  # noqa: E402
from pcctrl.models import pendulum_model  # noqa: E402

DT, OBS_STD, PROC_STD, STEPS = 0.05, 0.3, 0.1, 200


def ekf(readings: np.ndarray, actions: np.ndarray, x: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A textbook extended Kalman filter for the same model, for comparison."""
    Q = np.array([[PROC_STD**2 * DT * DT, PROC_STD**2 * DT], [PROC_STD**2 * DT, PROC_STD**2 + 1e-6]])
    R = OBS_STD**2 * np.eye(2)
    means, stds = [], []
    for t, z in enumerate(readings):
        if t:
            theta, omega = x
            raw = omega + (15.0 * np.sin(theta) + 3 * np.clip(actions[t - 1, 0], -2, 2)) * DT
            c = 1.0 if -8 < raw < 8 else 0.0
            d = np.array([c * 15.0 * np.cos(theta) * DT, c])
            F = np.array([[1 + DT * d[0], DT * d[1]], d])
            new = np.clip(raw, -8, 8)
            x = np.array([theta + new * DT, new])
            P = F @ P @ F.T + Q
        H = np.array([[-np.sin(x[0]), 0.0], [np.cos(x[0]), 0.0]])
        K = P @ H.T @ np.linalg.inv(H @ P @ H.T + R)
        x = x + K @ (z - np.array([np.cos(x[0]), np.sin(x[0])]))
        P = (np.eye(2) - K @ H) @ P
        means.append(x)
        stds.append(np.sqrt(np.diag(P)))
    return np.array(means), np.array(stds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="filter_pendulum.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    run = random_rollout("pcctrl/NoisyPendulum-v0", STEPS, args.seed, obs_noise_std=OBS_STD, process_noise_std=PROC_STD)
    states, actions, readings = run.states, run.actions, run.observations

    x0 = np.array([np.arctan2(readings[0, 1], readings[0, 0]), 0.0])
    P0 = np.diag([OBS_STD**2, 1.0])
    filt = PCFilter(pendulum_model(DT, obs_noise_std=OBS_STD, process_noise_std=PROC_STD, dtype=torch.float64))
    beliefs = filt.run(readings, actions, x0, P0)
    pc_mean, pc_std = beliefs.mean.numpy(), beliefs.std.numpy()
    ekf_mean, ekf_std = ekf(readings, actions, x0, P0)

    # Angles are compared modulo 2 pi: unwrap each estimate onto the true angle's branch.
    def onto_truth(angle: np.ndarray) -> np.ndarray:
        return states[:, 0] + (angle - states[:, 0] + np.pi) % (2 * np.pi) - np.pi

    t = np.arange(len(states)) * DT
    sensed = onto_truth(np.arctan2(readings[:, 1], readings[:, 0]))
    fig, axes = plt.subplots(2, 2, figsize=(12, 6), sharex=True)
    for col, (name, mean, std) in enumerate((("PC filter (laplace)", pc_mean, pc_std),
                                             ("EKF", ekf_mean, ekf_std))):
        for row, label in enumerate(("angle [rad]", "angular velocity [rad/s]")):
            ax = axes[row, col]
            est = onto_truth(mean[:, 0]) if row == 0 else mean[:, 1]
            ax.fill_between(t, est - 2 * std[:, row], est + 2 * std[:, row], alpha=0.3, label="mean ± 2σ")
            ax.plot(t, est, lw=1.2, label="belief mean")
            ax.plot(t, states[:, row], "k", lw=1.0, label="true state")
            if row == 0:
                ax.plot(t, sensed, ".", ms=2, color="tab:red", label="sensor (atan2)")
                err = onto_truth(mean[:, 0]) - states[:, 0]
                ax.set_title(f"{name}: RMSE angle {np.sqrt(np.mean(err**2)):.3f}, "
                             f"velocity {np.sqrt(np.mean((mean[:, 1] - states[:, 1])**2)):.3f}")
            ax.set_ylabel(label)
            ax.legend(loc="upper right", fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("time [s]")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
