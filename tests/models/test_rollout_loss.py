"""k-step rollout loss: PC update equals autograd's, k=1 is the one-step fit, runs stay in episodes."""

import numpy as np
import pytest
import torch

from pcctrl.agents.aif_config import AIFConfig
from pcctrl.errors import InvalidArgumentError, ShapeError
from pcctrl.models.dynamics_ensemble import DynamicsEnsemble
from pcctrl.models.rollout_loss import RolloutLoss, sequence_starts
from pcctrl.models.validated_fit import holdout_mask


def _ensemble(heteroscedastic: bool = False, trainer: str = "exact", seed: int = 1) -> DynamicsEnsemble:
    ens = DynamicsEnsemble(3, 2, members=2, hidden=(8, 8), heteroscedastic=heteroscedastic, trainer=trainer,
                           seed=seed).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-trivial normalisers and precision, so every term is exercised
        ens.input_norm.mean.copy_(torch.randn(5, generator=g, dtype=torch.double))
        ens.input_norm.std.copy_(torch.rand(5, generator=g, dtype=torch.double) + 0.5)
        ens.target_norm.mean.copy_(0.3 * torch.randn(3, generator=g, dtype=torch.double))
        ens.target_norm.std.copy_(torch.rand(3, generator=g, dtype=torch.double) + 0.2)
        if ens.precision is not None:
            ens.precision.raw.copy_(torch.randn(2, 3, generator=g, dtype=torch.double))
    return ens


def _batch(k: int, batch: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 2, 3, generator=g, dtype=torch.double),
            torch.randn(batch, 2, k, 3, generator=g, dtype=torch.double),
            torch.randn(batch, 2, k, 2, generator=g, dtype=torch.double))


def _reference_loss(ens: DynamicsEnsemble, s0, s_next, actions) -> torch.Tensor:
    """k-step Gaussian NLL from the public ``predict``, rolled out open loop (up to a constant)."""
    s, total = s0, 0.0
    for t in range(actions.shape[2]):
        pred = ens.predict(s, actions[:, :, t])
        total = total + (0.5 * (s_next[:, :, t] - pred.mean).square() / pred.var + 0.5 * pred.var.log()).sum((1, 2))
        s = pred.mean
    return total.mean()


def _params(ens: DynamicsEnsemble) -> list[torch.nn.Parameter]:
    return [p for p in ens.parameters() if p.requires_grad]


@pytest.mark.parametrize("heteroscedastic", [False, True])
@pytest.mark.parametrize("k", [2, 4])
def test_k_step_pc_update_equals_autograd_of_the_rollout_nll(heteroscedastic, k):
    ens = _ensemble(heteroscedastic)
    s0, s_next, actions = _batch(k)
    pc = RolloutLoss(ens, k).pc_gradients(s0, s_next, actions)
    params = _params(ens)
    reference = torch.autograd.grad(_reference_loss(ens, s0, s_next, actions), params)
    assert len(pc) == len(params)
    for p, g in zip(params, reference):
        assert float(g.abs().max()) > 0
        torch.testing.assert_close(pc[id(p)], g, rtol=1e-9, atol=1e-11)


def test_later_steps_change_the_update():
    """The k-step update is not the one-step update of the first transition (the test above can fail)."""
    ens = _ensemble()
    s0, s_next, actions = _batch(3)
    one = RolloutLoss(ens, 1).pc_gradients(s0, s_next[:, :, :1], actions[:, :, :1])
    three = RolloutLoss(ens, 3).pc_gradients(s0, s_next, actions)
    weight = ens.net.module[0].weight
    assert float((one[id(weight)] - three[id(weight)]).abs().max()) > 1e-3


@pytest.mark.parametrize("heteroscedastic", [False, True])
def test_one_step_graph_equals_the_one_step_network_update(heteroscedastic):
    ens = _ensemble(heteroscedastic)
    s0, s_next, actions = _batch(1)
    x = ens.input_norm(torch.cat((s0, actions[:, :, 0]), -1))
    y = ens.target_norm(s_next[:, :, 0] - s0)
    one_step = ens.net.pc_gradients(x, ens._pc_target(x, y))
    rollout = RolloutLoss(ens, 1).pc_gradients(s0, s_next, actions)
    for name, p in ens.net.named_parameters():
        torch.testing.assert_close(rollout[id(p)], one_step[name], rtol=1e-9, atol=1e-11)


def _chain(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(n + 1, 3, generator=g)
    return states[:-1].clone(), torch.randn(n, 2, generator=g), states[1:].clone()


def test_rollout_steps_1_is_the_one_step_fit_bit_for_bit():
    obs, actions, next_obs = _chain(120)
    a = DynamicsEnsemble(3, 2, members=2, hidden=(16,), seed=4)
    b = DynamicsEnsemble(3, 2, members=2, hidden=(16,), seed=4)
    la = a.fit(obs, actions, next_obs, 15)
    lb = b.fit(obs, actions, next_obs, 15, rollout_steps=1, episode_ends=torch.zeros(120, dtype=torch.bool))
    assert la == lb
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(p, q)
    assert AIFConfig().model_rollout_steps == 1


def test_k_step_exact_fit_equals_the_bp_trainer_and_lowers_the_loss():
    obs, actions, next_obs = _chain(200, seed=1)
    pc = DynamicsEnsemble(3, 2, members=2, hidden=(16,), trainer="exact", seed=3)
    bp = DynamicsEnsemble(3, 2, members=2, hidden=(16,), trainer="bp", seed=3)
    losses = pc.fit(obs, actions, next_obs, 40, rollout_steps=3)
    bp.fit(obs, actions, next_obs, 40, rollout_steps=3)
    for p, q in zip(pc.parameters(), bp.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("trainer", ["fpa", "il"])
def test_relaxing_trainers_learn_the_k_step_loss(trainer):
    obs, actions, next_obs = _chain(200, seed=2)
    ens = DynamicsEnsemble(3, 2, members=2, hidden=(16,), trainer=trainer, seed=0)
    losses = ens.fit(obs, actions, next_obs, 60, rollout_steps=3)
    assert all(np.isfinite(losses)) and np.mean(losses[-10:]) < np.mean(losses[:10])


def _episodes(lengths: list[int], terminal: set[int]) -> tuple:
    """Transitions of consecutive episodes: episode id per row; ``terminal`` episodes end terminated."""
    obs, nxt, ids, ends = [], [], [], []
    g = torch.Generator().manual_seed(7)
    for e, n in enumerate(lengths):
        states = torch.randn(n + 1, 3, generator=g)
        obs.append(states[:-1])
        nxt.append(states[1:])
        ids += [e] * n
        ends += [False] * (n - 1) + [e in terminal]
    return torch.cat(obs), torch.cat(nxt), np.array(ids), torch.tensor(ends)


def test_sequences_never_cross_episode_boundaries():
    obs, nxt, ids, ends = _episodes([5, 2, 7, 3, 4], terminal={0, 3})
    # Episode 3 ends terminated but the next episode starts where it stopped (the state link alone
    # would join them): episode_ends must cut it.
    obs[ids == 4] = torch.cat((nxt[ids == 3][-1:], nxt[ids == 4][:-1]))
    for k in (2, 3, 4):
        starts = sequence_starts(obs, nxt, k, ends).tolist()
        expected = [i for i in range(len(ids) - k + 1) if len(set(ids[i:i + k])) == 1]
        assert starts == expected
    joined = sequence_starts(obs, nxt, 4)  # without episode_ends, only the state link decides
    assert 15 in joined.tolist() and 15 not in sequence_starts(obs, nxt, 4, ends).tolist()


def test_a_held_out_gap_breaks_the_run_and_batches_follow_the_runs():
    obs, actions, nxt = _chain(30)
    keep = torch.ones(30, dtype=torch.bool)
    keep[10] = False
    starts = sequence_starts(obs[keep], nxt[keep], 3)
    assert 8 not in starts.tolist() and 9 not in starts.tolist() and 7 in starts.tolist()
    loss = RolloutLoss(DynamicsEnsemble(3, 2, members=2, hidden=(8,), seed=0), 3)
    s0, s_next, acts = loss.batch(obs[keep], actions[keep], nxt[keep], starts.view(-1, 1).expand(-1, 2))
    states = torch.cat((s0.unsqueeze(2), s_next), 2)
    original = torch.cat((obs[:1], nxt))
    for row in states[:, 0]:  # every run is a stretch of the true trajectory
        i = int((original == row[0]).all(1).nonzero())
        assert torch.equal(row, original[i:i + 4])


def test_bad_rollout_input_raises_precise_errors():
    obs, actions, nxt = _chain(10)
    ens = DynamicsEnsemble(3, 2, members=2, hidden=(8,), seed=0)
    for bad in (0, -2, 2.5, True, "3"):
        with pytest.raises(InvalidArgumentError, match="rollout_steps"):
            ens.fit(obs, actions, nxt, 5, rollout_steps=bad)
    with pytest.raises(ShapeError, match="at least 11 transitions, got 10"):
        ens.fit(obs, actions, nxt, 5, rollout_steps=11)
    short_obs, short_nxt, _, ends = _episodes([3, 2, 3], terminal=set())
    with pytest.raises(ShapeError, match="no run of 4 consecutive transitions"):
        ens.fit(short_obs, torch.zeros(8, 2), short_nxt, 5, rollout_steps=4)
    with pytest.raises(ShapeError, match="episode_ends"):
        ens.fit(obs, actions, nxt, 5, rollout_steps=2, episode_ends=torch.zeros(9, dtype=torch.bool))
    assert ens.n_fits == 0
    with pytest.raises(InvalidArgumentError, match="model_rollout_steps"):
        AIFConfig(model_rollout_steps=0)


def test_model_learner_passes_the_rollout_option_through(monkeypatch):
    from pcctrl.agents.model_learner import ModelLearner

    seen = []
    original = DynamicsEnsemble.fit

    def spy(self, *args, **kwargs):
        seen.append((kwargs.get("rollout_steps"), kwargs.get("episode_ends")))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamicsEnsemble, "fit", spy)
    cfg = AIFConfig(members=2, hidden=(8,), train_steps=5, model_rollout_steps=3, holdout_fraction=0.2)
    learner = ModelLearner(3, 2, cfg)
    obs, actions, nxt = _chain(60)
    for i in range(60):
        learner.add(obs[i], actions[i].numpy(), nxt[i], 0.0, i == 29)
    assert np.isfinite(learner.fit())
    held = torch.as_tensor(holdout_mask(learner.buffer.indices(), 0.2, cfg.seed))
    assert seen and all(k == 3 for k, _ in seen)
    expected = (torch.arange(60) == 29)[~held]  # the terminated row, if it is on the train side
    assert all(torch.equal(ends, expected) for _, ends in seen)


def test_model_learner_falls_back_to_one_step_while_no_run_of_k_exists():
    """Episodes shorter than k: the refit warns and uses the one-step loss instead of stopping learn."""
    from pcctrl.agents.model_learner import ModelLearner

    cfg = AIFConfig(members=2, hidden=(8,), train_steps=5, model_rollout_steps=4)
    learner = ModelLearner(3, 2, cfg)
    obs, actions, nxt = _chain(30)
    for i in range(30):
        learner.add(obs[i], actions[i].numpy(), nxt[i], 0.0, i % 3 == 2)  # every episode 3 steps long
    with pytest.warns(RuntimeWarning, match="one-step loss"):
        assert np.isfinite(learner.fit())
