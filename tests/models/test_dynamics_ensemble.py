"""DynamicsEnsemble: PC-trained members beat linear regression on held-out Pendulum transitions."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from pcctrl.models.dynamics_ensemble import DynamicsEnsemble
from pcctrl.models.replay import ReplayBuffer


def _pendulum_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        action = rng.uniform(-2, 2, 1).astype(np.float32)
        nxt, _, term, trunc, _ = env.step(action)
        rows.append((obs, action, nxt))
        obs = env.reset()[0] if term or trunc else nxt
    return tuple(torch.as_tensor(np.array(c), dtype=torch.float32) for c in zip(*rows))  # type: ignore[return-value]


def _linear_baseline(o, a, n, o_test, a_test):
    x = torch.cat((o, a, torch.ones(len(o), 1)), 1)
    w = torch.linalg.lstsq(x, n - o).solution
    return o_test + torch.cat((o_test, a_test, torch.ones(len(o_test), 1)), 1) @ w


@pytest.mark.parametrize("trainer", ["exact", "il"])
def test_ensemble_beats_linear_regression_on_held_out_pendulum(trainer):
    o, a, n = _pendulum_data(800, seed=0)
    ot, at, nt = _pendulum_data(300, seed=1)
    ens = DynamicsEnsemble(3, 1, members=3, hidden=(64, 64), trainer=trainer, seed=0)
    losses = ens.fit(o, a, n, steps=300 if trainer == "exact" else 120)
    assert losses[-1] < losses[0]
    pred = ens.predict(ot, at).mean.mean(1)
    mse_pc = (pred - nt).square().mean().item()
    mse_lin = (_linear_baseline(o, a, n, ot, at) - nt).square().mean().item()
    assert mse_pc < 0.5 * mse_lin, (mse_pc, mse_lin)


def test_exact_and_bp_trainers_agree():
    o, a, n = _pendulum_data(300, seed=2)
    pc = DynamicsEnsemble(3, 1, members=2, hidden=(16,), trainer="exact", seed=3)
    bp = DynamicsEnsemble(3, 1, members=2, hidden=(16,), trainer="bp", seed=3)
    pc.fit(o, a, n, steps=20)
    bp.fit(o, a, n, steps=20)
    for p, q in zip(pc.parameters(), bp.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_planning_dynamics_matches_step_and_members_are_independent():
    o, a, n = _pendulum_data(200, seed=4)
    ens = DynamicsEnsemble(3, 1, members=4, hidden=(32, 32), seed=5)
    ens.fit(o, a, n, steps=30)
    states = torch.randn(7, 4, 3)
    acts = torch.rand(7, 1) * 4 - 2
    with torch.no_grad():
        mean, gain = ens.step(states, acts)
        fast_mean, fast_gain = ens.planning_dynamics()(states, acts)
        torch.testing.assert_close(fast_mean, mean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fast_gain, gain, rtol=1e-4, atol=1e-5)
        assert bool((gain > 0).all())
        moved = states.clone()
        moved[:, 0] += 1.0
        other = ens.step(moved, acts)[0]
        torch.testing.assert_close(other[:, 1:], mean[:, 1:])


def test_same_seed_same_numbers():
    o, a, n = _pendulum_data(100, seed=6)
    runs = []
    for _ in range(2):
        ens = DynamicsEnsemble(3, 1, members=2, hidden=(8,), seed=11)
        runs.append(ens.fit(o, a, n, steps=5))
    assert runs[0] == runs[1]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="trainer"):
        DynamicsEnsemble(3, 1, trainer="sgd")
    ens = DynamicsEnsemble(3, 1, members=2, hidden=(8,))
    with pytest.raises(ValueError, match="expected obs"):
        ens.predict(torch.zeros(4, 2), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="finite"):
        ens.fit(torch.full((4, 3), float("nan")), torch.zeros(4, 1), torch.zeros(4, 3), steps=1)
    buf = ReplayBuffer(3, 1, capacity=2)
    with pytest.raises(ValueError, match="finite"):
        buf.add(np.zeros(3), np.zeros(1), np.zeros(3), float("nan"), False)
    for k in range(3):
        buf.add(np.full(3, k), np.zeros(1), np.zeros(3), float(k), False)
    assert len(buf) == 2 and buf.all().rewards.tolist() == [1.0, 2.0]
