"""The planner's fast paths: batched ensemble rollout, trajectory-batched scoring, compiled vs eager."""

import math

import pytest
import torch

from pcctrl.control import EFEPlanner, RewardPreference, known_dynamics
from pcctrl.control.efe_score import rollout, score
from pcctrl.models import DynamicsEnsemble


def _fitted_ensemble(members: int = 3, heteroscedastic: bool = False, seed: int = 0) -> DynamicsEnsemble:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(300, 3, generator=g)
    act = torch.rand(300, 1, generator=g) * 4 - 2
    nxt = obs + 0.1 * torch.tanh(obs.roll(1, -1)) + 0.05 * act + 0.01 * torch.randn(300, 3, generator=g)
    ens = DynamicsEnsemble(3, 1, members=members, hidden=(16, 16), heteroscedastic=heteroscedastic, seed=seed)
    ens.fit(obs, act, nxt, steps=20)
    return ens


def _reference_rollout(ens: DynamicsEnsemble, obs: torch.Tensor,
                       actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One member, one candidate, one step at a time from the module's own parameters and normalisers."""
    from pcctrl.models.dynamics_ensemble import EnsembleLinear

    linears = [m for m in ens.net.module if isinstance(m, EnsembleLinear)]
    h, n, d = actions.shape[0], obs.shape[0], ens.obs_dim
    states = torch.zeros(h + 1, n, ens.members, d)
    log_pi = torch.zeros(h, n, ens.members, d)
    for k in range(ens.members):
        for i in range(n):
            s = obs[i]
            states[0, i, k] = s
            for t in range(h):
                x = ens.input_norm(torch.cat((s, actions[t, i])))
                for j, lin in enumerate(linears):
                    x = x @ lin.weight[k] + lin.bias[k]
                    if j < len(linears) - 1:
                        x = x * torch.sigmoid(x)
                if ens.heteroscedastic:
                    hi, sp = ens.max_log_precision, torch.nn.functional.softplus
                    mu, lp = x[:d], -hi + sp(hi - sp(hi - x[d:]) + hi)
                else:
                    mu, lp = x, ens.precision.raw[k]
                s = s + ens.target_norm.inverse(mu)
                states[t + 1, i, k], log_pi[t, i, k] = s, lp
    var = (-log_pi).exp() * ens.target_norm.std.square()
    mean_k = states[1:]
    spread = ((mean_k - mean_k.mean(2, keepdim=True)) ** 2).mean(2)
    gains = 0.5 * torch.log1p(spread / var.mean(2)).sum(-1)
    return states, gains


@pytest.mark.parametrize("heteroscedastic", [False, True])
def test_batched_rollout_equals_per_member_reference_loop(heteroscedastic):
    ens = _fitted_ensemble(heteroscedastic=heteroscedastic, seed=1)
    g = torch.Generator().manual_seed(2)
    obs, actions = torch.randn(4, 3, generator=g), torch.rand(6, 4, 1, generator=g) * 4 - 2
    with torch.no_grad():
        states, gains = ens.planning_dynamics().rollout(obs, actions)
        ref_states, ref_gains = _reference_rollout(ens, obs, actions)
    torch.testing.assert_close(states, ref_states, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gains, ref_gains, rtol=1e-4, atol=1e-5)
    assert bool((gains > 0).all())


def _stepwise_value(dynamics, preference, obs, flat, *, weight, discount, terminal_value):
    """``-G`` as a step-by-step loop (the planner's definition, written out per step)."""
    n, h = flat.shape[0], flat.shape[1]
    state, total, alive = obs, torch.zeros(n, 1), torch.ones(n, 1)
    for t in range(h):
        nxt, gain = dynamics(state, flat[:, t])
        prev = state.unsqueeze(1).expand_as(nxt) if state.ndim == 2 else state
        act = flat[:, t].unsqueeze(1).expand(-1, nxt.shape[1], -1)
        step = preference.log_preference(prev, act, nxt) + weight * gain.unsqueeze(1)
        total = total + discount ** t * alive * step
        # The preference scores 2 sub-steps per model step: the step ends at its midpoint or its end.
        done = preference.terminated(0.5 * (prev + nxt)) | preference.terminated(nxt)
        alive = alive * (~done).float()
        state = nxt
    total = total + discount ** h * alive * terminal_value(state)
    return total.mean(1)


def _drifting(obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two members that drift apart along the first entry; gain = their spread + 0.1."""
    s = obs if obs.ndim == 3 else obs.unsqueeze(1).expand(-1, 2, -1)
    nxt = s + torch.tensor([[0.3, 0.0, -0.1], [0.2, 0.05, 0.0]]) + 0.2 * action.unsqueeze(1)
    return nxt, nxt.var(1, unbiased=False).sum(-1) + 0.1


@pytest.mark.parametrize("dynamics", ["ensemble", "drifting"])
def test_trajectory_batched_score_equals_stepwise_definition(dynamics):
    dyn = _fitted_ensemble(seed=3).planning_dynamics() if dynamics == "ensemble" else _drifting
    g = torch.Generator().manual_seed(4)
    obs, flat = torch.randn(16, 3, generator=g) * 0.5, torch.rand(16, 7, 1, generator=g) * 4 - 2
    with torch.no_grad():
        actions = flat.transpose(0, 1)
        states, gains = rollout(dyn, obs, actions)
        # A termination level that some member trajectories cross in mid-horizon and some never.
        level = float(states[3:, :, :, 0].amax(0).median()) if dynamics == "drifting" else \
            float(states[1:, :, :, 0].amax(0).median())
        reward = lambda o, a, n: -(n.square().sum(-1)) - 0.1 * a[..., 0].square()  # noqa: E731
        pref = RewardPreference(reward, tau=0.5, terminated=lambda n: n[..., 0] > level, substeps=2)
        value = lambda o: -o[..., 1].abs()  # noqa: E731
        fast = score(pref, states, actions, gains, epistemic_weight=0.3, discount=0.9, terminal_value=value)
        ref = _stepwise_value(dyn, pref, obs, flat, weight=0.3, discount=0.9, terminal_value=value)
    ended = states[1:, :, :, 0] > level
    assert bool(ended.any(0).any()) and not bool(ended.any(0).all()), "some rollouts, not all, must terminate"
    if dynamics == "drifting":
        assert bool((ended.any(0) & ~ended[0]).any()), "some must terminate after the first step"
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


def test_generic_dynamics_rollout_stacks_the_steps():
    step = lambda s, a: 0.9 * s + a  # noqa: E731
    obs, actions = torch.randn(5, 2), torch.randn(4, 5, 2)
    states, gains = rollout(known_dynamics(step), obs, actions)
    s = obs
    for t in range(4):
        s = 0.9 * s + actions[t]
        torch.testing.assert_close(states[t + 1, :, 0], s)
    assert states.shape == (5, 5, 1, 2) and float(gains.abs().max()) == 0.0


def _pendulum_reward(o, a, n):
    theta = torch.atan2(o[..., 1], o[..., 0])
    return -(theta.square() + 0.1 * o[..., 2].square() + 0.001 * a[..., 0].square())


def _planner(dynamics, compile: bool, **kw) -> EFEPlanner:
    return EFEPlanner(dynamics, RewardPreference(_pendulum_reward), torch.tensor([-2.0]), torch.tensor([2.0]),
                      horizon=6, candidates=32, elites=4, iterations=2, seed=5, compile=compile, **kw)


def test_compiled_rollout_and_plan_agree_with_eager_and_do_not_recompile_after_a_refit():
    ens = _fitted_ensemble(seed=6)
    g = torch.Generator().manual_seed(7)
    obs, actions = torch.randn(3, 3, generator=g), torch.rand(6, 3, 1, generator=g) * 4 - 2
    with torch.no_grad():
        eager, eager_gain = ens.planning_dynamics().rollout(obs, actions)
        comp, comp_gain = ens.planning_dynamics().rollout(obs, actions, compiled=True)
    torch.testing.assert_close(comp, eager, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(comp_gain, eager_gain, rtol=1e-5, atol=1e-5)

    start = torch.tensor([[math.cos(2.5), math.sin(2.5), 0.3]])
    planners = [_planner(ens.planning_dynamics(), compile=c, epistemic_weight=0.1) for c in (False, True)]
    for _ in range(2):
        first = [p.plan(start) for p in planners]
        torch.testing.assert_close(first[1], first[0], rtol=1e-5, atol=1e-5)
    # A refit gives new weights: the compiled graph must be reused, not rebuilt.
    ens.fit(torch.randn(50, 3), torch.rand(50, 1), torch.randn(50, 3), steps=2)
    for p in planners:
        p.set_dynamics(ens.planning_dynamics())
    with torch._dynamo.config.patch(error_on_recompile=True):
        again = [p.plan(start) for p in planners]
    torch.testing.assert_close(again[1], again[0], rtol=1e-5, atol=1e-5)


def test_compiled_generic_dynamics_agrees_with_eager():
    step = lambda s, a: torch.cat((s[:, :2] + 0.05 * s[:, 2:], s[:, 2:] + 0.1 * a), 1)  # noqa: E731
    start = torch.tensor([[0.5, -0.2, 0.1]])
    plans = [_planner(known_dynamics(step), compile=c).plan(start) for c in (False, True)]
    torch.testing.assert_close(plans[1], plans[0], rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_rollout_and_compiled_plan_agree_with_cpu():
    ens = _fitted_ensemble(seed=8)
    obs, actions = torch.randn(4, 3), torch.rand(5, 4, 1) * 4 - 2
    with torch.no_grad():
        cpu = ens.planning_dynamics().rollout(obs, actions)[0]
        ens.to("cuda")
        dyn = ens.planning_dynamics()
        for compiled in (False, True):
            gpu = dyn.rollout(obs.cuda(), actions.cuda(), compiled=compiled)[0]
            torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)
    start = torch.tensor([[1.0, 0.0, 0.0]], device="cuda")
    plans = [_planner(dyn, compile=c, device="cuda").plan(start) for c in (False, True)]
    torch.testing.assert_close(plans[1], plans[0], rtol=1e-5, atol=1e-5)
