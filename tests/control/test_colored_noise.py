"""Coloured sampling noise: white at beta 0, unit variance, and the autocorrelation its spectrum implies."""

import numpy as np
import pytest
import torch

from pcctrl.control import EFEPlanner, GoalPrior, known_dynamics
from pcctrl.control.colored_noise import colored_normal
from pcctrl.errors import InvalidArgumentError
from test_efe_planner import _run, integrator

def _autocorrelation(n: int, beta: float, lag: int) -> float:
    """Closed form for the circular process: sum over frequencies of power x cos(2 pi f lag / n)."""
    f = np.fft.rfftfreq(n)
    power = np.maximum(f, 1.0 / n) ** (-beta)
    weight = np.full(f.size, 4.0)  # every interior frequency enters twice, each with variance 2
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    terms = weight * power
    return float((terms * np.cos(2 * np.pi * f * lag)).sum() / terms.sum())


def test_beta_zero_is_randn():
    a = colored_normal((3, 5, 20, 2), 0.0, torch.Generator().manual_seed(4), dim=2)
    b = torch.randn((3, 5, 20, 2), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


@pytest.mark.parametrize("n", [20, 15])
@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0])
def test_unit_variance_and_spectrum(n, beta):
    x = colored_normal((40_000, n, 1), beta, torch.Generator().manual_seed(0), dim=1).double().squeeze(-1)
    assert abs(float(x.var()) - 1.0) < 0.03
    per_step = x.var(0)
    assert float((per_step - 1).abs().max()) < 0.06  # stationary: every step N(0, 1)
    for lag in (1, 3):
        measured = float((x * x.roll(-lag, 1)).mean())
        assert abs(measured - _autocorrelation(n, beta, lag)) < 0.03, (lag, measured)
    # Redder noise keeps its sign longer: the lag-1 correlation grows with beta.
    assert _autocorrelation(n, beta, 1) > _autocorrelation(n, beta - 1.0, 1) + 0.05


def test_seeded_and_bad_beta():
    g = lambda: torch.Generator().manual_seed(3)
    assert torch.equal(colored_normal((4, 10), 2.0, g(), dim=1), colored_normal((4, 10), 2.0, g(), dim=1))
    with pytest.raises(InvalidArgumentError):
        colored_normal((4, 10), -1.0, g())
    with pytest.raises(InvalidArgumentError):
        EFEPlanner(known_dynamics(integrator), GoalPrior([0.0, 0.0]), torch.tensor([-1.0]), torch.tensor([1.0]),
                   noise_beta=float("nan"))


def test_planner_with_red_noise_reaches_goal():
    prior = GoalPrior([0.0, 0.0], precision=[10.0, 1.0], action_precision=0.01)
    planner = EFEPlanner(known_dynamics(integrator), prior, torch.tensor([-1.0]), torch.tensor([1.0]),
                         horizon=15, candidates=200, iterations=3, elites=20, seed=0, noise_beta=2.0)
    s = _run(planner)
    assert float(s.abs().max()) < 0.1, s
