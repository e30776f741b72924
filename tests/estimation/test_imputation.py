"""MemoryImputation: what it stores, what it fills, what it leaves alone, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcctrl.errors import InvalidArgumentError, ShapeError
from pcctrl.estimation.imputation import MemoryImputation
from pcctrl.memory import HopfieldMemory


def _episode(seed: int, steps: int = 40) -> np.ndarray:
    t = np.arange(steps) * 0.1 + seed
    return np.stack([np.cos(t), np.sin(t), 0.5 * np.cos(2 * t)], axis=1)


def test_fit_stores_only_fully_observed_windows() -> None:
    a, b = _episode(0), _episode(1, 10)
    a[5, 1] = np.nan  # breaks the windows that contain step 5
    imp = MemoryImputation(HopfieldMemory("manhattan", "max", dtype=torch.float64), window=3).fit([a, b])
    expected = sum(1 for t in range(2, 40) if not t - 2 <= 5 <= t) + 8
    assert imp.stored == expected
    assert np.array_equal(imp.memory.patterns[0].numpy(), a[0:3].reshape(-1))


def test_fills_missing_entries_from_the_stored_window_and_passes_observed_ones() -> None:
    past = _episode(0)
    imp = MemoryImputation(HopfieldMemory("manhattan", "max", dtype=torch.float64), window=4).fit(past)
    imp.reset()
    for t in range(12):
        reading = past[t].copy()
        if t % 3 == 2 and t >= 3:  # once the cue holds a whole window
            reading[[0, 2]] = np.nan
        out = imp(reading)
        known = ~np.isnan(reading)
        assert np.array_equal(out[known], past[t][known])
        np.testing.assert_allclose(out, past[t], atol=1e-12)  # recalled from the matching window


def test_rejected_entries_are_replaced_and_all_missing_start_passes_nan() -> None:
    past = _episode(0)
    imp = MemoryImputation(HopfieldMemory("euclidean", "max", dtype=torch.float64), window=2).fit(past)
    imp.reset()
    assert np.isnan(imp(np.full(3, np.nan))).all()  # nothing known yet: the filter coasts
    imp.reset()
    imp(past[0])
    wrong = past[1].copy()
    wrong[2] = 99.0
    np.testing.assert_allclose(imp(wrong, rejected=[False, False, True]), past[1], atol=1e-12)


def test_cue_uses_raw_history_not_previous_imputations() -> None:
    past = _episode(0)
    memory = HopfieldMemory("euclidean", "max", dtype=torch.float64)
    imp = MemoryImputation(memory, window=3).fit(past)
    imp.reset()
    imp(past[0])
    imp(np.array([np.nan, past[1, 1], np.nan]))
    seen = []
    original = memory.recall
    memory.recall = lambda cue: seen.append(cue.clone()) or original(cue)  # type: ignore[method-assign]
    imp(np.array([past[2, 0], np.nan, past[2, 2]]))
    assert torch.isnan(seen[0][3]) and torch.isnan(seen[0][5])


def test_default_is_a_manhattan_softmax_memory_over_20_readings() -> None:
    imp = MemoryImputation()
    assert imp.window == 20 and isinstance(imp.memory, HopfieldMemory)
    assert (imp.memory.similarity, imp.memory.separation, imp.memory.beta) == ("manhattan", "softmax", 2.0)


def test_bad_input() -> None:
    with pytest.raises(InvalidArgumentError, match="window"):
        MemoryImputation(window=0)
    with pytest.raises(InvalidArgumentError, match="memory"):
        MemoryImputation(memory="hopfield")  # type: ignore[arg-type]
    imp = MemoryImputation(window=3)
    with pytest.raises(InvalidArgumentError, match="fit"):
        imp(np.zeros(3))
    with pytest.raises(InvalidArgumentError, match="no run"):
        imp.fit(_episode(0, 2))
    with pytest.raises(ShapeError):
        imp.fit([_episode(0), _episode(1)[:, :2]])
    imp.fit(_episode(0))
    before = imp.memory.patterns.clone()
    for bad, error in ((np.zeros(4), ShapeError), (np.array([np.inf, 0, 0]), InvalidArgumentError)):
        with pytest.raises(error):
            imp(bad)
    with pytest.raises(ShapeError):
        imp(np.zeros(3), rejected=[True])
    with pytest.raises(InvalidArgumentError):
        imp.fit(np.array([[np.inf, 0.0, 0.0]] * 5))
    assert torch.equal(imp.memory.patterns, before)


def test_gymnasium_wrapper_fills_dropped_entries() -> None:
    import gymnasium as gym

    import pcctrl.envs  # noqa: F401
    from pcctrl.envs import SensorDropout
    from pcctrl.envs.rollout import random_rollout
    from pcctrl.estimation import ImputedObservation

    past = [random_rollout("pcctrl/NoisyPendulum-v0", 60, s).observations for s in range(3)]
    imp = MemoryImputation(window=5).fit(past)
    env = ImputedObservation(SensorDropout(gym.make("pcctrl/NoisyPendulum-v0"), 0.5, seed=1), imp)
    obs, _ = env.reset(seed=0)
    filled = 0
    for _ in range(30):
        obs, _, _, _, info = env.step(env.action_space.sample())
        assert obs.dtype == np.float32 and obs.shape == (2,) and np.isfinite(obs).all()
        filled += int(info["dropped"].sum())
    assert filled > 0
    with pytest.raises(InvalidArgumentError, match="Box with 2 entries"):
        ImputedObservation(gym.make("pcctrl/LinearTracking-v0"), imp)
    with pytest.raises(InvalidArgumentError, match="not fitted"):
        ImputedObservation(gym.make("pcctrl/NoisyPendulum-v0"), MemoryImputation())
