"""Validated refits: early stopping never keeps a model worse on held-out data; divergence keeps the old one."""

import math

import numpy as np
import pytest
import torch

from pcctrl.errors import DivergenceError
from pcctrl.models.dynamics_ensemble import DynamicsEnsemble
from pcctrl.models.validated_fit import Split, fit_validated, held_out_nll, holdout_mask


def _data(n: int, seed: int, noise: float = 0.05) -> Split:
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n, 2, generator=g) * 2 - 1
    a = torch.rand(n, 1, generator=g) * 2 - 1
    nxt = s + 0.3 * torch.sin(3 * s) + 0.2 * a + noise * torch.randn(n, 2, generator=g)
    return Split(s, a, nxt)


def _state(ens: DynamicsEnsemble) -> list[torch.Tensor]:
    return [t.detach().clone() for t in ens.state_dict().values()]


def test_held_out_nll_is_the_gaussian_negative_log_likelihood():
    ens = DynamicsEnsemble(2, 1, members=3, hidden=(16,), seed=0)
    train, held = _data(200, 0), _data(50, 1)
    ens.fit(*train, steps=30)
    with torch.no_grad():
        pred = ens.predict(held.obs, held.actions)
    ref = -torch.distributions.Normal(pred.mean, pred.var.sqrt()).log_prob(held.next_obs.unsqueeze(1))
    assert math.isclose(held_out_nll(ens, held), float(ref.sum(-1).mean()), rel_tol=1e-5)


def test_early_stopping_never_accepts_a_model_worse_on_held_out_data():
    ens = DynamicsEnsemble(2, 1, members=2, hidden=(32,), lr=3e-3, seed=0)
    clean, held = _data(400, 0), _data(100, 1)
    first = fit_validated(ens, clean, held, 200, eval_every=25, patience=2)
    assert first.accepted and math.isfinite(first.nll)
    g = torch.Generator().manual_seed(7)
    accepted = rejected = 0
    for k in range(6):
        # Alternate more clean data with corrupted targets: both directions must be handled.
        if k % 2 == 0:
            train = _data(400 + 200 * k, 10 + k)
        else:
            bad = torch.randn(clean.next_obs.shape, generator=g) * 2.0
            train = Split(clean.obs, clean.actions, bad)
        before, nll_before = _state(ens), held_out_nll(ens, held)
        report = fit_validated(ens, train, held, 200, eval_every=25, patience=2)
        nll_after = held_out_nll(ens, held)
        assert math.isclose(report.previous_nll, nll_before, rel_tol=1e-6)
        assert nll_after <= nll_before + 1e-6, (k, nll_before, nll_after)
        if report.accepted:
            accepted += 1
            assert math.isclose(report.nll, nll_after, rel_tol=1e-6)
        else:
            rejected += 1
            for p, q in zip(before, _state(ens)):
                assert torch.equal(p, q)
    assert accepted >= 1 and rejected >= 1, (accepted, rejected)


def test_early_stopping_keeps_the_best_candidate():
    ens = DynamicsEnsemble(2, 1, members=2, hidden=(32,), lr=3e-2, seed=0)
    train, held = _data(60, 0, noise=0.2), _data(200, 1, noise=0.2)  # few points, big rate: overfits
    report = fit_validated(ens, train, held, 600, eval_every=20, patience=3)
    # The kept model is the best of all the candidates evaluated (each evaluated independently here).
    probe = DynamicsEnsemble(2, 1, members=2, hidden=(32,), lr=3e-2, seed=0)
    probe.fit(*train, 0)
    nlls = []
    for _ in range(report.steps // 20):
        probe.fit(*train, 20, refit_normalizers=False)
        nlls.append(held_out_nll(probe, held))
    assert report.steps < 600  # it stopped early
    assert math.isclose(report.nll, min(nlls), rel_tol=1e-4)
    assert report.best_step == 20 * (int(np.argmin(nlls)) + 1)


def test_diverging_fit_keeps_previous_model_and_raises():
    ens = DynamicsEnsemble(2, 1, members=2, hidden=(16,), seed=0)
    train, held = _data(200, 0), _data(50, 1)
    ens.fit(*train, steps=20)
    before = _state(ens)
    opt_before = {k: v.clone() for k, v in ens.optimizer.state_dict()["state"][0].items()}
    for group in ens.optimizer.param_groups:
        group["lr"] = 1e6
    with pytest.raises(DivergenceError, match="previous model"):
        ens.fit(*train, steps=20)
    for p, q in zip(before, _state(ens)):
        assert torch.equal(p, q)
    for k, v in ens.optimizer.state_dict()["state"][0].items():
        assert torch.equal(v, opt_before[k])
    with pytest.raises(DivergenceError):
        fit_validated(ens, train, held, 40, eval_every=10)
    for p, q in zip(before, _state(ens)):
        assert torch.equal(p, q)


def test_holdout_mask_is_seeded_stable_and_of_the_given_share():
    idx = np.arange(20_000)
    mask = holdout_mask(idx, 0.1, seed=3)
    assert abs(mask.mean() - 0.1) < 0.01
    np.testing.assert_array_equal(holdout_mask(idx[5000:], 0.1, seed=3), mask[5000:])
    assert (holdout_mask(idx, 0.1, seed=4) != mask).mean() > 0.1
    assert not holdout_mask(idx, 0.0, seed=3).any()
