"""EFEPlanner on known dynamics: a 1-D double integrator is driven to its goal."""

import pytest
import torch

from pcctrl.control import EFEPlanner, GoalPrior, RewardPreference, RewardSpec, SummedPreference, known_dynamics
from pcctrl.control.objectives import inverted_pendulum_terminated, pendulum_reward

DT = 0.1


def integrator(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    pos, vel = s[:, :1], s[:, 1:]
    vel = vel + DT * a
    return torch.cat((pos + DT * vel, vel), 1)


def _run(planner: EFEPlanner, steps: int = 60) -> torch.Tensor:
    s = torch.tensor([[-1.0, 0.0], [1.5, 0.5]])
    for _ in range(steps):
        a = planner.plan(s)
        assert a.shape == (2, 1) and bool((a.abs() <= 1.0).all())
        s = integrator(s, a)
    return s


@pytest.mark.parametrize("method", ["cem", "mppi"])
def test_double_integrator_reaches_goal(method):
    prior = GoalPrior([0.0, 0.0], precision=[10.0, 1.0], action_precision=0.01)
    planner = EFEPlanner(known_dynamics(integrator), prior, torch.tensor([-1.0]), torch.tensor([1.0]),
                         horizon=15, method=method, candidates=200, iterations=3, elites=20,
                         temperature=0.5, seed=0)
    s = _run(planner)
    assert float(s.abs().max()) < 0.1, s


def test_reward_preference_and_termination_stop_counting():
    reward = RewardSpec(lambda o, a, n: torch.ones(n.shape[:-1]), lambda n: n[..., 0] > 0.5)
    planner = EFEPlanner(known_dynamics(integrator), RewardPreference.from_spec(reward), torch.tensor([-1.0]),
                         torch.tensor([1.0]), horizon=10, seed=0)
    acts = torch.stack((torch.full((10, 1), 1.0), torch.full((10, 1), -1.0)))[None]
    values = planner.evaluate(torch.tensor([[0.45, 0.0]]), acts)
    assert values[0, 1] == 10.0 and values[0, 0] < 10.0


def test_same_seed_same_plan_and_reset():
    prior = GoalPrior([0.0, 0.0])
    make = lambda: EFEPlanner(known_dynamics(integrator), prior, torch.tensor([-1.0]), torch.tensor([1.0]), seed=7)
    p, q = make(), make()
    s = torch.tensor([[1.0, 0.0]])
    torch.testing.assert_close(p.plan(s), q.plan(s))
    state = p.state_dict()
    r = make()
    r.load_state_dict(state)
    torch.testing.assert_close(p.plan(s), r.plan(s))
    p.reset()
    assert p.mean is None


def test_closed_form_rewards():
    obs = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 1.0]])
    r = pendulum_reward(obs, torch.tensor([[0.0], [2.0]]), obs)
    torch.testing.assert_close(r, torch.tensor([0.0, -(torch.pi**2 + 0.1 + 0.004)]))
    assert inverted_pendulum_terminated(torch.tensor([[0.0, 0.3, 0, 0], [0.0, 0.1, 0, 0]])).tolist() == [True, False]


def test_bad_arguments():
    dyn, prior = known_dynamics(integrator), GoalPrior([0.0, 0.0])
    with pytest.raises(ValueError, match="method"):
        EFEPlanner(dyn, prior, torch.tensor([-1.0]), torch.tensor([1.0]), method="random")
    with pytest.raises(ValueError, match="bounds"):
        EFEPlanner(dyn, prior, torch.tensor([1.0]), torch.tensor([-1.0]))
    with pytest.raises(ValueError, match="elites"):
        EFEPlanner(dyn, prior, torch.tensor([-1.0]), torch.tensor([1.0]), candidates=5, elites=10)
    planner = EFEPlanner(dyn, prior, torch.tensor([-1.0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="finite"):
        planner.plan(torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="precision"):
        GoalPrior([0.0, 0.0], precision=[1.0, 2.0, 3.0])


def test_summed_preference_adds_log_preferences_and_ors_terminations():
    reward = RewardPreference(lambda o, a, n: n[..., 0], terminated=lambda n: n[..., 0] > 0.5)
    prior = GoalPrior([0.0, 0.0], precision=[2.0, 0.0])
    both = SummedPreference(reward, prior)
    obs, act = torch.zeros(3, 2), torch.zeros(3, 1)
    nxt = torch.tensor([[0.2, 1.0], [-0.4, 0.0], [0.7, 0.0]])
    torch.testing.assert_close(both.log_preference(obs, act, nxt),
                               torch.tensor([0.2 - 0.04, -0.4 - 0.16, 0.7 - 0.49]))
    assert both.terminated(nxt).tolist() == [False, False, True]
    assert SummedPreference(prior, prior).terminated(nxt) is None
    with pytest.raises(ValueError, match="at least one"):
        SummedPreference()


def test_reward_substeps_sum_along_the_step_and_stop_at_termination():
    spec = RewardSpec(lambda o, a, n: n[..., 0] - a[..., 0], lambda n: n[..., 0] >= 0.5)
    pref = RewardPreference.from_spec(spec, tau=2.0, substeps=4)
    obs, act = torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[1.0], [1.0]])
    nxt = torch.tensor([[0.4, 0.0], [0.8, 0.0]])
    # Row 0: sub-states 0.1, 0.2, 0.3, 0.4. Row 1: 0.2, 0.4, 0.6 ends the hold (0.8 does not count).
    expected = torch.tensor([(0.1 + 0.2 + 0.3 + 0.4 - 4) / 2, (0.2 + 0.4 + 0.6 - 3) / 2])
    torch.testing.assert_close(pref.log_preference(obs, act, nxt), expected)
    with pytest.raises(ValueError, match="substeps"):
        RewardPreference.from_spec(spec, substeps=0)


def test_planning_some_rows_keeps_the_others_warm_start():
    prior = GoalPrior([0.0, 0.0])
    planner = EFEPlanner(known_dynamics(integrator), prior, torch.tensor([-1.0]), torch.tensor([1.0]), seed=3)
    s = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    planner.plan(s)
    kept = planner.mean[1].clone()
    action = planner.plan(s, rows=torch.tensor([True, False]))
    assert action.shape == (1, 1)
    torch.testing.assert_close(planner.mean[1], kept)
    with pytest.raises(ValueError, match="rows"):
        planner.plan(s, rows=torch.tensor([True, False, True]))


# ---- terminal value: a 1-D double integrator with quadratic cost, against its closed-form LQR value ----

_R, _GAMMA = 0.1, 0.95
_A = torch.tensor([[1.0, DT], [0.0, 1.0]], dtype=torch.float64)
_B = torch.tensor([[0.5 * DT**2], [DT]], dtype=torch.float64)


def _lqr() -> tuple[torch.Tensor, torch.Tensor]:
    """Discounted LQR: P of the cost-to-go x'Px (Riccati iteration) and the gain K (u = -Kx)."""
    q, p = torch.eye(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
    a, b = _GAMMA**0.5 * _A, _GAMMA**0.5 * _B
    for _ in range(3000):
        p = q + a.T @ p @ a - a.T @ p @ b @ torch.linalg.solve(_R + b.T @ p @ b, b.T @ p @ a)
    k = torch.linalg.solve(_R + b.T @ p @ b, b.T @ p @ a)
    return p.float(), k.float()


def _lq_step(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return s @ _A.float().T + a @ _B.float().T


def _lq_reward(o: torch.Tensor, a: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    return -((o**2).sum(-1) + _R * (a**2).sum(-1))


_X0 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5], [0.5, -1.0]])


def _cost_to_go_error(terminal_value) -> torch.Tensor:
    """Relative error of the planner's realised discounted cost against the optimal x0'Px0."""
    p, _ = _lqr()
    planner = EFEPlanner(known_dynamics(_lq_step), RewardPreference(_lq_reward, 1.0), torch.tensor([-10.0]),
                         torch.tensor([10.0]), horizon=3, candidates=300, iterations=4, elites=30, init_std=0.3,
                         discount=_GAMMA, seed=0, terminal_value=terminal_value)
    s, cost, w = _X0.clone(), torch.zeros(len(_X0)), 1.0
    for _ in range(150):
        a = planner.plan(s)
        cost += w * ((s**2).sum(-1) + _R * (a**2).sum(-1))
        w *= _GAMMA
        s = _lq_step(s, a)
    optimal = torch.einsum("bi,ij,bj->b", _X0, p, _X0)
    return (cost - optimal).abs() / optimal


def test_terminal_value_reduces_cost_to_go_error_on_lqr_double_integrator():
    from pcctrl.models.value_model import ValueModel

    p, k = _lqr()
    without = _cost_to_go_error(None)
    exact = _cost_to_go_error(lambda s: -torch.einsum("...i,ij,...j->...", s, p, s))
    # A PC value learned by TD from transitions of the (optimal) LQR policy, scored by the reward.
    g = torch.Generator().manual_seed(0)
    s = torch.rand(2000, 2, generator=g) * 3 - 1.5
    u = -s @ k.T
    model = ValueModel(2, (32, 32), discount=_GAMMA, lr=3e-3, seed=0)
    model.fit(s, _lq_reward(s, u, None), _lq_step(s, u), torch.zeros(2000), rounds=15, steps_per_round=40)
    test = torch.rand(200, 2, generator=g) * 2 - 1
    with torch.no_grad():
        closed = torch.einsum("bi,ij,bj->b", test, p, test)
        assert float((model(test) + closed).abs().mean() / closed.mean()) < 0.35
    learned = _cost_to_go_error(lambda x: model(x).detach())
    assert float(without.max()) > 0.2  # a 3-step horizon alone is far from optimal here
    assert float(exact.max()) < 0.01
    assert float(learned.max()) < 0.2 * float(without.max()), (learned, without)


def test_terminal_value_must_be_callable():
    planner = EFEPlanner(known_dynamics(integrator), RewardPreference(_lq_reward, 1.0), torch.tensor([-1.0]),
                         torch.tensor([1.0]), horizon=3, seed=0)
    with pytest.raises(ValueError, match="terminal_value"):
        planner.set_terminal_value(3.0)
