"""Heteroscedastic DynamicsEnsemble: PC-learned input-dependent precision recovers a known noise level."""

import torch

from pcctrl.models.dynamics_ensemble import DynamicsEnsemble


def sigma(x: torch.Tensor) -> torch.Tensor:
    return 0.02 + 0.2 * x.abs()


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n, 1, generator=g) * 2 - 1
    a = torch.rand(n, 1, generator=g) * 2 - 1
    return s, a, s + 0.5 * torch.sin(2 * s) + 0.3 * a + sigma(s) * torch.randn(n, 1, generator=g)


def _std_ratio(heteroscedastic: bool, steps: int) -> torch.Tensor:
    ens = DynamicsEnsemble(1, 1, members=2, hidden=(32, 32), heteroscedastic=heteroscedastic, lr=3e-3, seed=0)
    ens.fit(*_data(3000, 0), steps=steps)
    grid = torch.linspace(-0.9, 0.9, 10)[:, None]
    with torch.no_grad():
        std = ens.predict(grid, torch.zeros_like(grid)).var.sqrt().mean(1)[:, 0]
    return std / sigma(grid)[:, 0]


def test_heteroscedastic_precision_recovers_input_dependent_noise():
    ratio = _std_ratio(True, 800)
    assert bool(((ratio > 0.7) & (ratio < 1.4)).all()), ratio
    # A homoscedastic precision cannot: the noise level varies 10x over the inputs.
    homo = _std_ratio(False, 300)
    assert not bool(((homo > 0.7) & (homo < 1.4)).all()), homo


def test_heteroscedastic_pc_update_equals_backprop_of_the_nll():
    s, a, n = _data(300, 1)
    pc = DynamicsEnsemble(1, 1, members=2, hidden=(16,), heteroscedastic=True, trainer="exact", seed=3)
    bp = DynamicsEnsemble(1, 1, members=2, hidden=(16,), heteroscedastic=True, trainer="bp", seed=3)
    pc.fit(s, a, n, steps=20)
    bp.fit(s, a, n, steps=20)
    for p, q in zip(pc.parameters(), bp.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_heteroscedastic_planning_dynamics_matches_step():
    s, a, n = _data(300, 2)
    ens = DynamicsEnsemble(1, 1, members=3, hidden=(16, 16), heteroscedastic=True, seed=4)
    ens.fit(s, a, n, steps=30)
    obs, act = torch.randn(9, 3, 1), torch.rand(9, 1) * 2 - 1
    with torch.no_grad():
        mean, gain = ens.step(obs, act)
        fast_mean, fast_gain = ens.planning_dynamics()(obs, act)
    torch.testing.assert_close(fast_mean, mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast_gain, gain, rtol=1e-4, atol=1e-5)
