"""Precisions against Gaussian closed forms (torch.distributions as the reference)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from pcctrl import Precision


def _spd(size: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(size, size, generator=gen, dtype=torch.float64)
    return a @ a.T + size * torch.eye(size, dtype=torch.float64)


def _reference(eps: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """Energy = -log N(eps; 0, Pi^-1) minus the 2-pi constant."""
    dist = MultivariateNormal(torch.zeros(precision.shape[0], dtype=precision.dtype), precision_matrix=precision)
    return -dist.log_prob(eps) - 0.5 * precision.shape[0] * math.log(2 * math.pi)


@pytest.mark.parametrize("seed", range(3))
def test_energies_match_gaussian_negative_log_likelihood(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    diag = torch.rand(4, generator=gen, dtype=torch.float64) + 0.5
    full = _spd(4, seed)
    cases = [
        (Precision("scalar", torch.tensor(2.5, dtype=torch.float64)), 2.5 * torch.eye(4, dtype=torch.float64)),
        (Precision.diagonal(diag), torch.diag(diag)),
        (Precision.full(full), full),
    ]
    for precision, matrix in cases:
        torch.testing.assert_close(precision.energy(eps), _reference(eps, matrix))
        torch.testing.assert_close(precision.weigh(eps), eps @ matrix)
        torch.testing.assert_close(precision.solve(precision.weigh(eps)), eps)
        torch.testing.assert_close(precision.matrix(4), matrix)


@pytest.mark.parametrize("kind", ["scalar", "diagonal", "full"])
def test_missing_entries_use_the_marginal_of_the_observed_ones(kind: str) -> None:
    gen = torch.Generator().manual_seed(4)
    full = _spd(5, 11)
    precision = {
        "scalar": Precision("scalar", torch.tensor(0.7, dtype=torch.float64)),
        "diagonal": Precision.diagonal(torch.rand(5, generator=gen, dtype=torch.float64) + 0.3),
        "full": Precision.full(full),
    }[kind]
    matrix = precision.matrix(5)
    eps = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    observed = torch.rand(6, 5, generator=gen) > 0.4
    observed[0] = True
    energy = precision.energy(eps, observed)
    eps_var = eps.clone().requires_grad_(True)
    weighed = torch.autograd.grad(precision.energy(eps_var, observed).sum(), eps_var)[0]
    torch.testing.assert_close(precision.weigh(eps, observed), weighed)
    covariance = torch.linalg.inv(matrix)
    for row in range(6):
        keep = observed[row]
        if not keep.any():
            assert energy[row] == 0
            continue
        marginal = torch.linalg.inv(covariance[keep][:, keep])
        torch.testing.assert_close(energy[row], _reference(eps[row, keep][None], marginal)[0])
        assert bool((weighed[row, ~keep] == 0).all())


def test_learnable_precision_learns_the_noise_level() -> None:
    """A learnable output precision, trained by the PC weight step, converges to 1/noise var."""
    from torch import nn

    from pcctrl import PCNetwork

    gen = torch.Generator().manual_seed(0)
    true_w = torch.randn(3, 2, generator=gen)
    x = torch.randn(4000, 3, generator=gen, dtype=torch.float64)
    y = x @ true_w.double() + 0.5 * torch.randn(4000, 2, generator=gen, dtype=torch.float64)
    torch.manual_seed(0)
    net = PCNetwork(nn.Sequential(nn.Linear(3, 2)).double(), algorithm="exact",
                    precisions={"x1": Precision.scalar(1.0, learnable=True).double()})
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    for epoch in range(30):
        for i in range(0, 4000, 200):
            net.train_step(x[i:i + 200], y[i:i + 200], optimizer)
    learned = float(net.precisions["x1"].raw.detach().exp())
    assert learned == pytest.approx(4.0, rel=0.1)
