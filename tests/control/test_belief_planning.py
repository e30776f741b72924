"""Planning under a belief: draws of the posterior as per-member rollout starts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcctrl import PCFilter
from pcctrl.control import EFEPlanner, RewardPreference
from pcctrl.errors import InvalidArgumentError
from pcctrl.estimation import Perception
from pcctrl.models import LinearGaussianModel

from test_planner_speed_paths import _fitted_ensemble, _reference_rollout


def _perception() -> Perception:
    model = LinearGaussianModel(np.eye(2), np.zeros((2, 1)), np.eye(2), 0.01, 0.04)
    perception = Perception(2, PCFilter(model), initial=lambda _o: (np.zeros(2), np.array([[1.0, 0.6], [0.6, 0.5]])),
                            features=lambda m: torch.cat((m, m[:, :1] * m[:, 1:]), -1), feature_dim=3)
    perception.step(np.array([[0.3, -0.2], [1.0, 2.0]]), np.ones(2, dtype=bool))
    return perception


def test_belief_draws_have_the_belief_mean_and_covariance():
    perception = _perception()
    belief = perception.belief
    draws = perception.sample_features(40_000, torch.Generator().manual_seed(0)).double()
    assert draws.shape == (2, 40_000, 3)
    for row in range(2):
        x = draws[row, :, :2]
        assert torch.allclose(x.mean(0), belief.mean[row], atol=0.01)
        assert torch.allclose(torch.cov(x.T), belief.cov[row], atol=0.01)
        # The feature map is applied to each draw (here the product of the two entries).
        assert torch.allclose(draws[row, :, 2], x[:, 0] * x[:, 1], atol=1e-6)
    again = perception.sample_features(5, torch.Generator().manual_seed(0))
    assert torch.equal(again, perception.sample_features(5, torch.Generator().manual_seed(0)))


def test_sampling_needs_a_belief_and_a_positive_count():
    unfiltered = Perception(2)
    unfiltered.step(np.zeros((1, 2)), np.ones(1, dtype=bool))
    with pytest.raises(InvalidArgumentError, match="belief"):
        unfiltered.sample_features(3, torch.Generator())
    with pytest.raises(InvalidArgumentError, match="samples"):
        _perception().sample_features(0, torch.Generator())


def test_per_member_starts_roll_out_each_member_from_its_own_state():
    ens = _fitted_ensemble(members=3, seed=4)
    g = torch.Generator().manual_seed(5)
    starts, actions = torch.randn(2, 3, 3, generator=g), torch.rand(4, 2, 1, generator=g) * 4 - 2
    states, _ = ens.planning_dynamics().rollout(starts, actions)
    for k in range(3):  # member k's trajectory is the reference loop's from member k's start
        ref, _ = _reference_rollout(ens, starts[:, k], actions)
        torch.testing.assert_close(states[:, :, k], ref[:, :, k], rtol=1e-5, atol=1e-5)


def test_planning_on_identical_draws_is_planning_on_the_mean():
    ens = _fitted_ensemble(members=3, seed=6)
    preference = RewardPreference(lambda o, a, n: -(n**2).sum(-1), 1.0)

    def planner() -> EFEPlanner:
        return EFEPlanner(ens.planning_dynamics(), preference, torch.tensor([-2.0]), torch.tensor([2.0]),
                          horizon=5, candidates=32, iterations=2, elites=4, seed=0)

    obs = torch.tensor([[0.5, -0.3, 0.2]])
    on_mean, on_copies = planner(), planner()
    for _ in range(3):
        a = on_mean.plan(obs)
        b = on_copies.plan(obs.unsqueeze(1).expand(-1, 3, -1))
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
