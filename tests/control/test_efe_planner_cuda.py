"""EFEPlanner on a GPU: bounded actions, the goal is reached, and plans repeat under a seed
(skipped without CUDA). The reference is the double integrator's known goal (the origin)."""

from __future__ import annotations

import pytest
import torch

from pcctrl.control import EFEPlanner, GoalPrior, known_dynamics

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DT = 0.1


def integrator(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    vel = s[:, 1:] + DT * a
    return torch.cat((s[:, :1] + DT * vel, vel), 1)


def make(method: str, seed: int = 0) -> EFEPlanner:
    prior = GoalPrior([0.0, 0.0], precision=[10.0, 1.0], action_precision=0.01).cuda()
    return EFEPlanner(known_dynamics(integrator), prior, torch.tensor([-1.0]), torch.tensor([1.0]), horizon=15,
                      method=method, candidates=200, iterations=3, elites=20, temperature=0.5, seed=seed,
                      device="cuda")


@pytest.mark.parametrize("method", ["cem", "mppi"])
def test_cuda_planner_reaches_the_goal(method) -> None:
    planner = make(method)
    s = torch.tensor([[-1.0, 0.0], [1.5, 0.5]], device="cuda")
    for _ in range(60):
        a = planner.plan(s)
        assert a.is_cuda and a.shape == (2, 1) and bool((a.abs() <= 1.0).all())
        s = integrator(s, a)
    assert float(s.abs().max()) < 0.1, s


def test_cuda_planner_same_seed_same_plan() -> None:
    s = torch.tensor([[1.0, 0.0]], device="cuda")
    torch.testing.assert_close(make("cem", 3).plan(s), make("cem", 3).plan(s))
