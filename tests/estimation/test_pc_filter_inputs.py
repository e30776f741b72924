"""Bad inputs raise precise errors and leave the belief as it was; model arguments are checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcctrl.estimation import PCFilter
from pcctrl.models import (InvalidArgumentError, LinearGaussianModel, NotPositiveDefiniteError,
                           StateSpaceModel, pendulum_model)


def linear_model(**kwargs) -> LinearGaussianModel:
    A = np.array([[1.0, 0.1], [0.0, 1.0]])
    return LinearGaussianModel(A, np.array([[0.0], [0.1]]), np.array([[1.0, 0.0]]), 0.01, 0.1, **kwargs)


@pytest.fixture(params=["linear", "nonlinear", "fixed"])
def filt(request) -> PCFilter:
    if request.param == "linear":
        f = PCFilter(linear_model())
    elif request.param == "nonlinear":
        f = PCFilter(pendulum_model(process_noise_std=0.1, dtype=torch.float64))
    else:
        f = PCFilter(linear_model(), mode="fixed")
    f.reset(np.array([0.3, -0.2]), np.eye(2) * 0.5)
    f.update(np.full(f.model.obs_dim, 0.5), np.array([0.1]))
    return f


def assert_unchanged(f: PCFilter, before) -> None:
    after = f.belief
    assert torch.equal(after.mean, before.mean) and torch.equal(after.cov, before.cov)


@pytest.mark.parametrize("obs,action,argument", [
    ("inf", [0.1], "obs"),
    ("short", [0.1], "obs"),
    ("ok", [np.nan], "action"),
    ("ok", [0.1, 0.2], "action"),
    ("ok", None, "action"),
    ("batched", [0.1], "obs"),
])
def test_rejected_update_keeps_the_belief(filt: PCFilter, obs, action, argument) -> None:
    p = filt.model.obs_dim
    reading = {"inf": np.full(p, np.inf), "short": np.zeros(p + 1), "ok": np.zeros(p),
               "batched": np.zeros((3, p))}[obs]
    before = filt.belief
    with pytest.raises(InvalidArgumentError) as info:
        filt.update(reading, None if action is None else np.array(action))
    assert info.value.argument == argument
    assert isinstance(info.value, ValueError)
    assert_unchanged(filt, before)


def test_negative_inf_is_rejected_but_nan_is_missing() -> None:
    f = PCFilter(linear_model())
    with pytest.raises(InvalidArgumentError, match="inf"):
        f.update(np.array([-np.inf]), np.array([0.0]))
    prior = f.predict(np.array([0.0]))
    f.reset()
    coasted = f.update(np.array([np.nan]), np.array([0.0]))
    torch.testing.assert_close(coasted.mean, prior.mean)
    torch.testing.assert_close(coasted.cov, prior.cov)


@pytest.mark.parametrize("cov,match", [
    (np.array([[1.0, 0.0], [0.0, -1.0]]), "positive definite"),
    (np.array([[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
    (np.full((2, 2), np.nan), "NaN"),
    (np.eye(3), "shape"),
])
def test_reset_rejects_bad_covariances(filt: PCFilter, cov, match) -> None:
    before = filt.belief
    with pytest.raises(InvalidArgumentError, match=match) as info:
        filt.reset(np.zeros(2), cov)
    assert info.value.argument == "cov"
    assert_unchanged(filt, before)


def test_reset_rejects_mismatched_batches() -> None:
    f = PCFilter(linear_model())
    with pytest.raises(InvalidArgumentError, match="batch"):
        f.reset(np.zeros((3, 2)), np.eye(2)[None].repeat(4, 0))
    belief = f.reset(np.zeros(2), np.eye(2), batch_size=4)
    assert belief.mean.shape == (4, 2) and belief.cov.shape == (4, 2, 2)


@pytest.mark.parametrize("kwargs,argument", [
    ({"Q": -np.eye(2)}, "process_cov"),
    ({"R": np.array([[0.0]])}, "obs_cov"),
    ({"C": np.ones((1, 3))}, "C"),
    ({"A": np.ones((2, 3))}, "A"),
    ({"B": np.ones((3, 1))}, "B"),
    ({"R": np.array([[np.inf]])}, "obs_cov"),
])
def test_linear_model_checks_its_arguments(kwargs, argument) -> None:
    args = {"A": np.eye(2), "B": np.ones((2, 1)), "C": np.ones((1, 2)), "Q": np.eye(2), "R": np.eye(1)}
    args.update(kwargs)
    with pytest.raises(InvalidArgumentError) as info:
        LinearGaussianModel(**args)
    assert info.value.argument == argument


def test_state_space_model_checks_function_shapes() -> None:
    with pytest.raises(InvalidArgumentError, match="transition"):
        StateSpaceModel(lambda s, a: s[:, :1], lambda s: s, 2, 2, process_cov=1.0, obs_cov=1.0)
    with pytest.raises(InvalidArgumentError, match="observation"):
        StateSpaceModel(lambda s, a: s, lambda s: s, 2, 3, process_cov=1.0, obs_cov=1.0)
    with pytest.raises(InvalidArgumentError, match="obs"):
        StateSpaceModel(lambda s, a: s, lambda s: s, 2, 2, process_cov=1.0)
    with pytest.raises(InvalidArgumentError, match="state_dim"):
        StateSpaceModel(lambda s, a: s, lambda s: s, 0, 2, process_cov=1.0, obs_cov=1.0)


def test_filter_arguments_are_checked() -> None:
    model = linear_model()
    for kwargs, argument in (({"mode": "ekf"}, "mode"), ({"iters": 0}, "iters"), ({"x_lr": -1.0}, "x_lr"),
                             ({"prior_precision": np.eye(2)}, "prior_precision")):
        with pytest.raises(InvalidArgumentError) as info:
            PCFilter(model, **kwargs)
        assert info.value.argument == argument
    with pytest.raises(InvalidArgumentError, match="prior_precision"):
        PCFilter(pendulum_model(process_noise_std=0.1, velocity_jitter=0.0), mode="fixed")


def test_learnable_model_has_parameters_and_filters_without_graph() -> None:
    model = linear_model(learnable=True)
    names = {name for name, _ in model.named_parameters()}
    assert {"A", "B", "C", "process_noise.raw", "obs_noise.raw"} <= names
    f = PCFilter(model)
    belief = f.update(np.array([0.2]), np.array([0.0]))
    assert not belief.mean.requires_grad
    reference = PCFilter(linear_model()).update(np.array([0.2]), np.array([0.0]))
    torch.testing.assert_close(belief.mean, reference.mean)
    torch.testing.assert_close(belief.cov, reference.cov)


def test_precision_arguments_equal_inverse_covariances() -> None:
    f = lambda s, a: s  # noqa: E731
    by_cov = StateSpaceModel(f, lambda s: s, 2, 2, process_cov=np.diag([0.5, 2.0]), obs_cov=0.25,
                             dtype=torch.float64)
    by_prec = StateSpaceModel(f, lambda s: s, 2, 2, process_precision=np.diag([2.0, 0.5]), obs_precision=4.0,
                              dtype=torch.float64)
    torch.testing.assert_close(by_cov.process_cov(), by_prec.process_cov())
    torch.testing.assert_close(by_cov.obs_cov(), by_prec.obs_cov())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    rng = np.random.default_rng(0)
    readings, actions = rng.normal(size=(30, 8, 1)), rng.normal(size=(30, 8, 1))
    for make in (linear_model, lambda: pendulum_model(process_noise_std=0.1, dtype=torch.float64)):
        cpu, gpu = PCFilter(make()), PCFilter(make().cuda())
        for f in (cpu, gpu):
            f.reset(batch_size=8)
        p = cpu.model.obs_dim
        for t in range(30):
            obs = np.repeat(readings[t], p, axis=1)
            b_cpu, b_gpu = cpu.update(obs, actions[t]), gpu.update(obs, actions[t])
        assert b_gpu.mean.is_cuda
        torch.testing.assert_close(b_gpu.mean.cpu(), b_cpu.mean)
        torch.testing.assert_close(b_gpu.cov.cpu(), b_cpu.cov)


def test_moving_the_model_moves_the_filter() -> None:
    model = linear_model()
    f = PCFilter(model)
    model.to(torch.float32)
    belief = f.update(np.array([0.1]), np.array([0.0]))
    assert belief.mean.dtype == torch.float32
