"""The envs' models and noise match their documented closed forms."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest

import pcctrl.envs  # noqa: F401  (registers the ids)


def collect_linear_tracking(steps: int, seed: int, **kwargs: float) -> tuple[gym.Env, dict[str, np.ndarray]]:
    """Run LinearTracking with random actions; return states, next states, actions, observations."""
    env = gym.make("pcctrl/LinearTracking-v0", **kwargs)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    s, s_next, acts, ys, ys_state = [], [], [], [obs[:2]], [info["state"]]
    for _ in range(steps):
        a = rng.uniform(-1, 1, size=2).astype(np.float32)
        prev = info["state"]
        obs, _, terminated, truncated, info = env.step(a)
        s.append(prev)
        s_next.append(info["state"])
        acts.append(info["action"])
        if terminated or truncated:
            obs, info = env.reset()
        ys.append(obs[:2])
        ys_state.append(info["state"])
    data = {k: np.array(v) for k, v in
            dict(s=s, s_next=s_next, a=acts, y=ys, y_state=ys_state).items()}
    return env, data


def whitened_cov(residuals: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Empirical covariance of ``L^-1 r`` where ``cov = L L^T`` (identity if ``r ~ N(0, cov)``)."""
    white = np.linalg.solve(np.linalg.cholesky(cov), residuals.T).T
    return white.T @ white / len(white)


def test_linear_tracking_samples_process_noise_with_covariance_q() -> None:
    env, d = collect_linear_tracking(6000, seed=1)
    u = env.unwrapped
    w = d["s_next"] - d["s"] @ u.A.T - d["a"] @ u.B.T
    np.testing.assert_allclose(w.mean(0), 0.0, atol=4 * np.sqrt(np.diag(u.Q) / len(w)).max())
    np.testing.assert_allclose(whitened_cov(w, u.Q), np.eye(4), atol=0.08)


def test_linear_tracking_samples_observation_noise_with_covariance_r() -> None:
    env, d = collect_linear_tracking(6000, seed=2, obs_noise_std=0.3)
    u = env.unwrapped
    np.testing.assert_allclose(u.R, 0.09 * np.eye(2))
    v = d["y"] - d["y_state"] @ u.C.T
    np.testing.assert_allclose(whitened_cov(v, u.R), np.eye(2), atol=0.08)


def test_linear_tracking_model_matrices_closed_form() -> None:
    u = gym.make("pcctrl/LinearTracking-v0", dt=0.2, accel_noise_psd=0.5, action_scale=2.0).unwrapped
    dt, eye = 0.2, np.eye(2)
    np.testing.assert_allclose(u.A, np.block([[eye, dt * eye], [0 * eye, eye]]))
    np.testing.assert_allclose(u.B, 2.0 * np.vstack([dt**2 / 2 * eye, dt * eye]))
    np.testing.assert_allclose(u.C, np.hstack([eye, 0 * eye]))
    np.testing.assert_allclose(u.Q[0, 0], 0.5 * dt**3 / 3)
    np.testing.assert_allclose(u.Q[0, 2], 0.5 * dt**2 / 2)
    np.testing.assert_allclose(u.Q[2, 2], 0.5 * dt)


def test_kalman_filter_from_exposed_matrices_is_consistent() -> None:
    """A Kalman filter built from A, B, C, Q, R and the initial law is statistically consistent."""
    env = gym.make("pcctrl/LinearTracking-v0")
    u = env.unwrapped
    rng = np.random.default_rng(0)
    nis, nees = [], []
    for episode in range(20):
        obs, info = env.reset(seed=100 + episode)
        m, p = u.initial_mean.copy(), u.initial_cov.copy()
        done = False
        while True:
            e = obs[:2] - u.C @ m
            s_cov = u.C @ p @ u.C.T + u.R
            k = p @ u.C.T @ np.linalg.inv(s_cov)
            m, p = m + k @ e, (np.eye(4) - k @ u.C) @ p
            nis.append(e @ np.linalg.solve(s_cov, e))
            err = info["state"] - m
            nees.append(err @ np.linalg.solve(p, err))
            if done:
                break
            a = rng.uniform(-1, 1, size=2)
            obs, _, terminated, truncated, info = env.step(a)
            m, p = u.A @ m + u.B @ info["action"], u.A @ p @ u.A.T + u.Q
            done = terminated or truncated
    assert np.mean(nis) == pytest.approx(2.0, abs=0.15)  # chi-square(2) mean
    assert np.mean(nees) == pytest.approx(4.0, abs=0.3)  # chi-square(4) mean


def test_linear_tracking_reward_is_negative_quadratic_cost() -> None:
    env = gym.make("pcctrl/LinearTracking-v0", tracking_weight=2.0, ctrl_cost_weight=0.5)
    env.reset(seed=0)
    a = np.array([0.5, -1.0], dtype=np.float32)
    _, reward, _, _, info = env.step(a)
    err = info["state"][:2] - info["reference"]
    assert reward == pytest.approx(-(2.0 * err @ err + 0.5 * (0.25 + 1.0)))
    r = info["reference"]
    assert np.hypot(*r) == pytest.approx(1.0)


def test_noisy_pendulum_without_noise_follows_pendulum_v1() -> None:
    ours = gym.make("pcctrl/NoisyPendulum-v0", obs_noise_std=0.0)
    ref = gym.make("Pendulum-v1")
    _, info = ours.reset(seed=5)
    ref_obs, _ = ref.reset(seed=5)
    rng = np.random.default_rng(5)
    for _ in range(200):
        th, thdot = info["state"]
        np.testing.assert_allclose(ref_obs, [np.cos(th), np.sin(th), thdot], atol=1e-4)
        a = rng.uniform(-2, 2, size=1).astype(np.float32)
        obs, reward, _, _, info = ours.step(a)
        ref_obs, ref_reward, _, _, _ = ref.step(a)
        assert reward == pytest.approx(ref_reward, rel=1e-5, abs=1e-5)
        np.testing.assert_allclose(obs, [np.cos(info["state"][0]), np.sin(info["state"][0])], atol=1e-6)


def _obs_noise(env_id: str, steps: int, true_obs: Callable[[dict], np.ndarray], **kwargs: object) -> np.ndarray:
    """Observation minus its noise-free value from ``info['state']`` over a random rollout."""
    env = gym.make(env_id, **kwargs)
    obs, info = env.reset(seed=0)
    env.action_space.seed(0)
    residuals = [obs - true_obs(info)]
    for _ in range(steps):
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        residuals.append(obs - true_obs(info))
        if terminated or truncated:
            obs, info = env.reset()
    return np.array(residuals, dtype=np.float64)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "true_obs", "std"),
    [
        ("pcctrl/NoisyPendulum-v0", {"obs_noise_std": 0.2},
         lambda i: np.array([np.cos(i["state"][0]), np.sin(i["state"][0])]), [0.2, 0.2]),
        ("pcctrl/ArmReach-v0", {"obs_noise_std": 0.05},
         lambda i: np.concatenate([i["state"][:2], i["target"]]), [0.05, 0.05, 0.0, 0.0]),
        ("pcctrl/ArmReach-v0", {"obs_noise_std": 0.05, "observe_velocity": True, "velocity_noise_std": 0.3},
         lambda i: np.concatenate([i["state"], i["target"]]), [0.05, 0.05, 0.3, 0.3, 0.0, 0.0]),
        ("pcctrl/PartialInvertedPendulum-v0", {"obs_noise_std": (0.02, 0.1)},
         lambda i: i["state"][:2], [0.02, 0.1]),
    ],
)
def test_sensor_noise_has_documented_std(env_id: str, kwargs: dict, true_obs: Callable[[dict], np.ndarray],
                                         std: list[float]) -> None:
    res = _obs_noise(env_id, 3000, true_obs, **kwargs)
    measured = res.std(axis=0)
    np.testing.assert_allclose(measured, std, rtol=0.08, atol=1e-6)


def test_arm_reach_reward_distance_and_effort() -> None:
    env = gym.make("pcctrl/ArmReach-v0", ctrl_cost_weight=0.3)
    _, info = env.reset(seed=4)
    a = np.array([0.6, -0.8], dtype=np.float32)
    _, reward, _, _, info = env.step(a)
    dist = np.linalg.norm(info["fingertip"] - info["target"])
    assert reward == pytest.approx(-dist - 0.3 * 1.0, rel=1e-6)
    q1, q2 = info["state"][:2]  # forward kinematics of the 0.30 m + 0.25 m arm
    tip = [0.3 * np.cos(q1) + 0.25 * np.cos(q1 + q2), 0.3 * np.sin(q1) + 0.25 * np.sin(q1 + q2)]
    np.testing.assert_allclose(info["fingertip"], tip, atol=1e-9)


def test_arm_reach_target_within_radius_range() -> None:
    env = gym.make("pcctrl/ArmReach-v0", target_radius_range=(0.2, 0.3))
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        assert 0.2 <= np.linalg.norm(info["target"]) <= 0.3
        np.testing.assert_array_equal(obs[2:], info["target"])


def test_partial_inverted_pendulum_terminates_on_true_angle_only() -> None:
    env = gym.make("pcctrl/PartialInvertedPendulum-v0", obs_noise_std=1.0)
    env.reset(seed=0)
    for _ in range(5):  # huge sensor noise, upright pole: no termination
        _, reward, terminated, _, info = env.step(np.zeros(1, dtype=np.float32))
        assert not terminated and reward == 1 and abs(info["state"][1]) < 0.2
    steps = 0
    while not terminated:
        _, reward, terminated, _, info = env.step(np.full(1, 3.0, dtype=np.float32))
        steps += 1
        assert steps < 200
    assert abs(info["state"][1]) > 0.2 and reward == 0
