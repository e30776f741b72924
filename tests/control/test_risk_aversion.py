"""Risk-averse scoring: members' mean value less kappa times their spread, and the plan it picks."""

import numpy as np
import pytest
import torch

from pcctrl.control import EFEPlanner, RewardPreference, RewardSpec
from pcctrl.control.efe_score import score
from pcctrl.errors import InvalidArgumentError

FIRST = RewardPreference.from_spec(RewardSpec(lambda o, a, n: n[..., 0]))


def _two_members(obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A push (action > 0) gains 2 under member 0 and nothing under member 1; holding gains 0.9 under both."""
    flat = obs if obs.ndim == 2 else obs[:, 0]
    push = (action[:, :1] > 0).to(flat.dtype)
    gain = torch.stack((2.0 * push + 0.9 * (1 - push), 0.9 * (1 - push)), 1)  # (N, 2, 1)
    nxt = torch.cat((gain, torch.zeros_like(gain)), -1) + flat[:, None] * 0
    return nxt, torch.zeros(flat.shape[0])


@pytest.mark.parametrize("kappa", [0.0, 0.7, 2.0])
def test_score_is_mean_less_kappa_std(kappa):
    g = torch.Generator().manual_seed(0)
    states = torch.randn(4, 6, 5, 2, generator=g)  # H + 1 = 4 steps, 6 candidates, 5 members
    actions = torch.randn(3, 6, 1, generator=g)
    got = score(FIRST, states, actions, None, epistemic_weight=0.0, discount=0.9, terminal_value=None,
                risk_aversion=kappa)
    s = states.double().numpy()
    per_member = sum(0.9 ** t * s[t + 1, :, :, 0] for t in range(3))  # (6, 5)
    want = per_member.mean(1) - kappa * per_member.std(1, ddof=1)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


def test_one_member_has_no_spread():
    states = torch.randn(3, 4, 1, 2, generator=torch.Generator().manual_seed(1))
    kw = dict(epistemic_weight=0.0, discount=1.0, terminal_value=None)
    torch.testing.assert_close(score(FIRST, states, torch.zeros(2, 4, 1), None, risk_aversion=3.0, **kw),
                               score(FIRST, states, torch.zeros(2, 4, 1), None, **kw))


def test_risk_aversion_picks_the_plan_the_members_agree_on():
    def first_action(kappa: float) -> float:
        planner = EFEPlanner(_two_members, FIRST, torch.tensor([-1.0]), torch.tensor([1.0]), horizon=1,
                             candidates=64, iterations=3, elites=8, seed=0, risk_aversion=kappa)
        return float(planner.plan(torch.zeros(1, 2))[0, 0])

    assert first_action(0.0) > 0  # mean 1.0 beats 0.9
    assert first_action(1.0) <= 0  # 1.0 - 1.41 loses to 0.9 - 0


def test_negative_or_nan_kappa_is_refused():
    for bad in (-0.1, float("nan")):
        with pytest.raises(InvalidArgumentError):
            EFEPlanner(_two_members, FIRST, torch.tensor([-1.0]), torch.tensor([1.0]), risk_aversion=bad)
