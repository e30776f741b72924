"""Wrapper statistics against their parameters, composition, seeding and argument checks."""

from __future__ import annotations

import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env

import pcctrl.envs  # noqa: F401  (registers the ids)
from pcctrl.envs.spaces import NaNBox
from pcctrl.envs.wrappers import (
    ActionDelay,
    ActionNoise,
    MaskObservation,
    ObservationDelay,
    ObservationNoise,
    SensorDropout,
)


class CounterEnv(gym.Env):
    """Observation ``[t, t, ..., t]`` at step t; records every action it receives; dt = 0.05."""

    metadata = {"render_modes": []}
    dt = 0.05

    def __init__(self, dim: int = 3, dtype: Any = np.float64) -> None:
        self.observation_space = spaces.Box(0.0, 1e9, shape=(dim,), dtype=dtype)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.t = 0
        self.actions: list[np.ndarray] = []

    def _obs(self) -> np.ndarray:
        return np.full(self.observation_space.shape, self.t, dtype=self.observation_space.dtype)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        self.actions = []
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.actions.append(np.array(action, copy=True))
        self.t += 1
        return self._obs(), 0.0, False, False, {"t": self.t}


def run(env: gym.Env, steps: int, seed: int = 0, action: Any = None) -> np.ndarray:
    """Reset with ``seed``, take ``steps`` steps (zero action by default), stack the observations."""
    obs, _ = env.reset(seed=seed)
    out = [obs]
    act = np.zeros(env.action_space.shape, dtype=np.float32) if action is None else action
    for _ in range(steps):
        out.append(env.step(act)[0])
    return np.array(out, dtype=np.float64)


def autocorr(x: np.ndarray, lag: int) -> np.ndarray:
    """Per-column sample autocorrelation at ``lag``."""
    x = x - x.mean(0)
    return (x[lag:] * x[:-lag]).mean(0) / x.var(0)


def noise_of(obs: np.ndarray) -> np.ndarray:
    """Counter observation minus the counter value."""
    return obs - np.arange(len(obs))[:, None]


def test_white_observation_noise_variance_and_independence() -> None:
    std = np.array([0.5, 1.0, 2.0])
    env = ObservationNoise(CounterEnv(3), std=std)
    assert env.observation_space == spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float64)
    n = noise_of(run(env, 20000))
    np.testing.assert_allclose(n.var(0), std**2, rtol=0.05)
    np.testing.assert_allclose(n.mean(0), 0.0, atol=4 * std.max() / np.sqrt(len(n)))
    np.testing.assert_allclose(autocorr(n, 1), 0.0, atol=0.03)


def test_ou_observation_noise_autocorrelation_matches_exp_minus_dt_over_tau() -> None:
    tau, std = 0.2, 0.7
    env = ObservationNoise(CounterEnv(4), std=std, kind="ou", tau=tau)  # dt from env.unwrapped.dt = 0.05
    rho = np.exp(-0.05 / tau)
    assert env.rho == pytest.approx(rho)
    n = noise_of(run(env, 30000))
    np.testing.assert_allclose(autocorr(n, 1), rho, atol=0.02)
    np.testing.assert_allclose(autocorr(n, 3), rho**3, atol=0.03)
    np.testing.assert_allclose(n.var(0), std**2, rtol=0.1)
    assert ObservationNoise(CounterEnv(4), std=std, kind="ou", tau=2.0, dt=1.0).rho == pytest.approx(np.exp(-0.5))


def test_observation_noise_keeps_float32_dtype() -> None:
    env = ObservationNoise(CounterEnv(2, dtype=np.float32), std=0.1)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.dtype == np.float32
    assert env.observation_space.contains(env.step(np.zeros(2, dtype=np.float32))[0])


def test_action_noise_variance_and_clipping_probability() -> None:
    base = CounterEnv(1)
    env = ActionNoise(base, std=0.1, clip=False)
    run(env, 20000)
    applied = np.array(base.actions, dtype=np.float64)
    np.testing.assert_allclose(applied.var(0), 0.01, rtol=0.05)
    base = CounterEnv(1)
    env = ActionNoise(base, std=3.0)  # clipped into [-1, 1]
    run(env, 20000)
    applied = np.array(base.actions)
    assert applied.min() >= -1.0 and applied.max() <= 1.0
    p_clip = math.erfc(1.0 / 3.0 / math.sqrt(2.0))  # P(|N(0, 3^2)| > 1)
    assert np.mean(np.abs(applied) == 1.0) == pytest.approx(p_clip, abs=0.015)


def test_ou_action_noise_autocorrelation() -> None:
    base = CounterEnv(1)
    env = ActionNoise(base, std=0.2, kind="ou", tau=0.5, clip=False)
    run(env, 20000)
    np.testing.assert_allclose(autocorr(np.array(base.actions, dtype=np.float64), 1), np.exp(-0.1), atol=0.02)


@pytest.mark.parametrize("p", [0.0, 0.15, 0.5, 1.0])
def test_sensor_dropout_nan_rate_and_space(p: float) -> None:
    env = SensorDropout(CounterEnv(4), p=p)
    assert isinstance(env.observation_space, NaNBox)
    obs, _ = env.reset(seed=1)
    assert not np.isnan(obs).any()
    nans, dropped = [], []
    for t in range(1, 5001):
        obs, _, _, _, info = env.step(np.zeros(2, dtype=np.float32))
        assert env.observation_space.contains(obs)
        np.testing.assert_array_equal(obs[~np.isnan(obs)], t)
        nans.append(np.isnan(obs))
        dropped.append(info["dropped"])
    nans = np.array(nans)
    np.testing.assert_array_equal(nans, np.array(dropped))
    assert nans.mean() == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / nans.size) + 1e-12)


def test_sensor_dropout_hold_repeats_last_delivered_value() -> None:
    env = SensorDropout(CounterEnv(3), p=0.4, mode="hold", indices=[0, 2])
    assert env.observation_space == CounterEnv(3).observation_space
    prev, _ = env.reset(seed=2)
    dropped_all = []
    for t in range(1, 5001):
        obs, _, _, _, info = env.step(np.zeros(2, dtype=np.float32))
        d = info["dropped"]
        np.testing.assert_array_equal(obs[d], prev[d])
        np.testing.assert_array_equal(obs[~d], t)
        dropped_all.append(d)
        prev = obs
    d = np.array(dropped_all)
    assert not d[:, 1].any()
    assert d[:, [0, 2]].mean() == pytest.approx(0.4, abs=0.02)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_observation_delay_is_exactly_k_steps(k: int) -> None:
    obs = run(ObservationDelay(CounterEnv(2), delay=k), 20)
    expected = np.maximum(np.arange(21) - k, 0)
    np.testing.assert_array_equal(obs[:, 0], expected)


@pytest.mark.parametrize("k", [0, 2])
def test_action_delay_is_exactly_k_steps(k: int) -> None:
    base = CounterEnv(1)
    env = ActionDelay(base, delay=k)
    env.reset(seed=0)
    chosen = [np.array([i / 10, -i / 10], dtype=np.float32) for i in range(10)]
    applied = [env.step(a)[4]["applied_action"] for a in chosen]
    expected = [np.zeros(2, dtype=np.float32)] * k + chosen[: len(chosen) - k]
    np.testing.assert_array_equal(np.array(base.actions), np.array(expected))
    np.testing.assert_array_equal(np.array(applied), np.array(expected))


def test_mask_observation_hides_entries() -> None:
    env = MaskObservation(CounterEnv(4), hide=[1, -1])
    np.testing.assert_array_equal(env.visible_indices, [0, 2])
    assert env.observation_space.shape == (2,)
    obs = run(env, 3)
    np.testing.assert_array_equal(obs, np.repeat(np.arange(4)[:, None], 2, axis=1))


def test_stacked_noise_wrappers_draw_independent_noise() -> None:
    env = ObservationNoise(ObservationNoise(CounterEnv(2), std=0.3), std=0.4)
    n = noise_of(run(env, 20000, seed=5))
    np.testing.assert_allclose(n.var(0), 0.3**2 + 0.4**2, rtol=0.05)  # 0.25 if both drew the same stream


def test_composition_delay_of_dropout_of_noise() -> None:
    def inner() -> gym.Env:
        return SensorDropout(ObservationNoise(CounterEnv(3), std=0.5, kind="ou", tau=0.1), p=0.2)

    plain = run(inner(), 3000, seed=9)
    delayed = run(ObservationDelay(inner(), delay=2), 3000, seed=9)
    np.testing.assert_array_equal(delayed[2:], plain[:-2])  # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(delayed[:3], np.repeat(plain[:1], 3, axis=0))
    n = noise_of(plain)
    assert np.isnan(n[1:]).mean() == pytest.approx(0.2, abs=0.02)
    np.testing.assert_allclose(np.nanvar(n, axis=0), 0.25, rtol=0.12)


def full_stack(seed_arg: int | None = None) -> gym.Env:
    """Every wrapper around LinearTracking."""
    env = gym.make("pcctrl/LinearTracking-v0")
    env = ObservationNoise(env, std=0.05, kind="ou", tau=0.3, seed=seed_arg)
    env = SensorDropout(env, p=0.1, mode="hold")
    env = ObservationDelay(env, delay=1)
    env = MaskObservation(env, hide=[3])
    env = ActionNoise(env, std=0.1)
    return ActionDelay(env, delay=1)


def test_full_stack_is_seeded_and_passes_gymnasium_checker() -> None:
    a, b, c = (run(full_stack(), 100, seed=s, action=np.ones(2, dtype=np.float32)) for s in (4, 4, 5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[10:], c[10:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(full_stack(), skip_render_check=True)


def test_wrapper_noise_does_not_perturb_inner_env_randomness() -> None:
    raw = gym.make("pcctrl/LinearTracking-v0")
    wrapped = ObservationNoise(gym.make("pcctrl/LinearTracking-v0"), std=0.2)
    raw.reset(seed=3), wrapped.reset(seed=3)
    for _ in range(20):
        _, _, _, _, i1 = raw.step(np.ones(2, dtype=np.float32))
        _, _, _, _, i2 = wrapped.step(np.ones(2, dtype=np.float32))
        np.testing.assert_array_equal(i1["state"], i2["state"])


def test_seed_argument_selects_the_stream() -> None:
    a = run(ObservationNoise(CounterEnv(2), std=1.0, seed=1), 5, seed=0)
    b = run(ObservationNoise(CounterEnv(2), std=1.0, seed=2), 5, seed=0)
    assert not np.array_equal(a, b)
    first = ObservationNoise(CounterEnv(2), std=1.0, seed=7)
    second = ObservationNoise(CounterEnv(2), std=1.0, seed=7)
    np.testing.assert_array_equal(first.reset()[0], second.reset()[0])  # unseeded reset: from `seed`


class DiscreteObsEnv(CounterEnv):
    """CounterEnv with a Discrete observation space."""

    def __init__(self) -> None:
        super().__init__(1)
        self.observation_space = spaces.Discrete(3)


@pytest.mark.parametrize(
    ("make", "error", "name"),
    [
        (lambda: SensorDropout(CounterEnv(), p=-0.1), ValueError, "p: must"),
        (lambda: SensorDropout(CounterEnv(), p=1.5), ValueError, "p: must"),
        (lambda: SensorDropout(CounterEnv(), p=0.1, mode="zero"), ValueError, "mode"),
        (lambda: SensorDropout(CounterEnv(3), p=0.1, indices=[3]), ValueError, "indices"),
        (lambda: SensorDropout(CounterEnv(dtype=np.int64), p=0.1), TypeError, "env.observation_space"),
        (lambda: ObservationDelay(CounterEnv(), delay=-1), ValueError, "delay"),
        (lambda: ObservationDelay(CounterEnv(), delay=1.5), ValueError, "delay"),
        (lambda: ActionDelay(CounterEnv(), delay=-2), ValueError, "delay"),
        (lambda: ActionDelay(CounterEnv(), delay=1, initial_action=[5.0, 0.0]), ValueError, "initial_action"),
        (lambda: ObservationNoise(CounterEnv(), std=-1.0), ValueError, "std"),
        (lambda: ObservationNoise(CounterEnv(3), std=[1.0, 2.0]), ValueError, "std"),
        (lambda: ObservationNoise(CounterEnv(), std=1.0, kind="pink"), ValueError, "kind"),
        (lambda: ObservationNoise(CounterEnv(), std=1.0, kind="ou"), ValueError, "tau"),
        (lambda: ObservationNoise(CounterEnv(), std=1.0, kind="ou", tau=1.0, dt=-1.0), ValueError, "dt"),
        (lambda: ObservationNoise(CounterEnv(), std=1.0, seed=-3), ValueError, "seed"),
        (lambda: ObservationNoise(DiscreteObsEnv(), std=1.0), TypeError, "env.observation_space"),
        (lambda: ActionNoise(CounterEnv(), std=float("inf")), ValueError, "std"),
        (lambda: MaskObservation(CounterEnv(3), hide=[3]), ValueError, "hide"),
        (lambda: MaskObservation(CounterEnv(3), hide=[0, 0]), ValueError, "hide"),
        (lambda: MaskObservation(CounterEnv(3), hide=[0, 1, 2]), ValueError, "hide"),
        (lambda: MaskObservation(CounterEnv(3), hide=1), TypeError, "hide"),
        (lambda: MaskObservation(DiscreteObsEnv(), hide=[0]), TypeError, "env.observation_space"),
    ],
)
def test_invalid_arguments_raise_naming_the_argument(make: Any, error: type, name: str) -> None:
    with pytest.raises(error, match=name):
        make()
