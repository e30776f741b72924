"""``EFEPlanner(cuda_graph=True)``: the whole search replayed as a CUDA graph gives the eager planner's plans."""

import pytest
import torch

from pcctrl.agents import ActiveInferenceAgent, AIFConfig
from pcctrl.agents.active_inference import _planner as agent_planner
from pcctrl.control import EFEPlanner, GoalPrior, known_dynamics
from pcctrl.control.graphed_call import GraphedCall
from pcctrl.errors import InvalidArgumentError
from pcctrl.models import DynamicsEnsemble
from test_planner_speed_paths import _fitted_ensemble

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _ensemble(seed: int, device: str) -> DynamicsEnsemble:
    return _fitted_ensemble(members=4, seed=seed).to(device)


def _pair(dynamics, device: str = "cuda", **kw) -> tuple[EFEPlanner, EFEPlanner]:
    """An eager planner and a graphed one, same settings and seed."""
    prior = GoalPrior([1.0, 0.0, 0.0], precision=[1.0, 1.0, 0.1], action_precision=0.01).to(device)
    settings = dict(horizon=8, candidates=64, elites=8, iterations=3, seed=3, device=device,
                    epistemic_weight=0.2, **kw)
    return tuple(EFEPlanner(dynamics, prior, torch.tensor([-2.0]), torch.tensor([2.0]), cuda_graph=graph,
                            **settings) for graph in (False, True))  # type: ignore[return-value]


def test_cuda_graph_needs_a_cuda_device_and_excludes_compile():
    dyn = known_dynamics(lambda s, a: s)
    prior = GoalPrior([0.0], precision=[1.0])
    with pytest.raises(InvalidArgumentError, match="cuda_graph.*CUDA device"):
        EFEPlanner(dyn, prior, torch.tensor([-1.0]), torch.tensor([1.0]), cuda_graph=True, device="cpu")
    with pytest.raises(InvalidArgumentError, match="drop compile=True"):
        EFEPlanner(dyn, prior, torch.tensor([-1.0]), torch.tensor([1.0]), cuda_graph=True, compile=True)


def test_agent_uses_a_cuda_graph_only_on_cuda_by_default():
    agent = ActiveInferenceAgent("Pendulum-v1", seed=0)
    assert agent.planner._graphed is None
    with pytest.raises(InvalidArgumentError, match="cuda_graph"):
        ActiveInferenceAgent("Pendulum-v1", config=AIFConfig(cuda_graph_planner=True), seed=0)


@cuda
def test_graphed_plans_equal_eager_plans_over_calls_refits_and_row_subsets():
    ens = _ensemble(0, "cuda")
    eager, graphed = _pair(ens.planning_dynamics())
    obs = torch.tensor([[0.3, -0.2, 0.5], [-1.0, 0.4, 0.0]], device="cuda")
    for _ in range(4):
        torch.testing.assert_close(graphed.plan(obs), eager.plan(obs), rtol=0, atol=1e-6)
        torch.testing.assert_close(graphed.last_plan, eager.last_plan, rtol=0, atol=1e-6)
        obs = obs + 0.05
    assert graphed._graphed.active and graphed._graphed.captures == 1
    refit = _ensemble(1, "cuda").planning_dynamics()
    for planner in (eager, graphed):
        planner.set_dynamics(refit)
    torch.testing.assert_close(graphed.plan(obs), eager.plan(obs), rtol=0, atol=1e-6)
    torch.testing.assert_close(graphed.plan(obs), eager.plan(obs), rtol=0, atol=1e-6)
    assert graphed._graphed.captures == 2
    rows = torch.tensor([False, True], device="cuda")
    torch.testing.assert_close(graphed.plan(obs, rows), eager.plan(obs, rows), rtol=0, atol=1e-6)
    torch.testing.assert_close(graphed.mean, eager.mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(graphed.plan(obs), eager.plan(obs), rtol=0, atol=1e-6)
    assert graphed._graphed.captures == 3  # the full batch kept its graph beside the subset's
    assert graphed.generator.get_state().equal(eager.generator.get_state())


@cuda
def test_graphed_mppi_with_a_terminal_value_and_a_changed_setting_equals_eager():
    step = lambda s, a: torch.cat((s[:, :2] + 0.05 * s[:, 2:], s[:, 2:] + 0.1 * a), 1)  # noqa: E731
    value = lambda end: -(end ** 2).sum(-1)  # noqa: E731
    eager, graphed = _pair(known_dynamics(step), method="mppi", terminal_value=value)
    obs = torch.tensor([[0.5, -0.2, 0.1]], device="cuda")
    for _ in range(3):
        torch.testing.assert_close(graphed.plan(obs), eager.plan(obs), rtol=0, atol=1e-6)
    for planner in (eager, graphed):
        planner.temperature = 0.2  # frozen in the captured graph: a change must capture again
    torch.testing.assert_close(graphed.plan(obs), eager.plan(obs), rtol=0, atol=1e-6)
    assert graphed._graphed.captures == 2


@cuda
def test_agent_on_cuda_plans_through_a_graph_with_the_eager_agents_actions():
    agent = ActiveInferenceAgent("Pendulum-v1", seed=0, device="cuda")
    agent.learn(250)
    graphed = agent.planner
    assert graphed._graphed is not None and graphed._graphed.active and graphed._graphed.failure is None
    cfg = agent.config.with_overrides(cuda_graph_planner=False)
    eager = agent_planner(agent.learner, graphed.preference, agent.env.action_space, cfg, agent.device)
    agent.learner.configure(eager)
    eager.load_state_dict(graphed.state_dict())
    obs = torch.tensor([[0.9, 0.43, -0.5]], device="cuda")
    for _ in range(3):
        torch.testing.assert_close(graphed.plan(obs), eager.plan(obs), rtol=0, atol=1e-6)


@cuda
def test_a_function_that_cannot_be_captured_falls_back_to_eager_with_the_same_result():
    calls = GraphedCall(lambda x: (x * float(x.sum().item()),))
    x = torch.arange(3.0, device="cuda")
    for _ in range(3):
        torch.testing.assert_close(calls(x)[0], x * 3.0)
    assert calls.failure is not None and not calls.active
