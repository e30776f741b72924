"""The fused analytic path against the general autograd path: same updates, same energy traces."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from models import cnn, mlp
from pcctrl import PCNetwork, Precision

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _grouped() -> nn.Sequential:
    """Value nodes after each tanh(linear): nested Sequentials are one node each (PCX's layout)."""
    return nn.Sequential(nn.Sequential(nn.Linear(6, 12), nn.Tanh()), nn.Sequential(nn.Linear(12, 10), nn.Tanh()),
                         nn.Linear(10, 4))


def _mixed() -> nn.Sequential:
    """The remaining known layers: Sigmoid, LeakyReLU, Identity, Conv1d, max pooling with overlap."""
    return nn.Sequential(
        nn.Conv1d(2, 3, 3, padding=1), nn.LeakyReLU(0.1), nn.Identity(),
        nn.Flatten(), nn.Linear(24, 9), nn.Sigmoid(), nn.Unflatten(1, (1, 3, 3)),
    )


def _pooled() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
                         nn.Flatten(), nn.Linear(32, 4))


def _wide() -> nn.Sequential:
    """Wide enough (every matmul dimension >= 64) for float32 products to go through oneDNN."""
    return nn.Sequential(nn.Sequential(nn.Linear(72, 96), nn.Tanh()), nn.Sequential(nn.Linear(96, 80), nn.Tanh()),
                         nn.Linear(80, 8))


MODELS = {
    "mlp-tanh": (lambda: mlp(nn.Tanh), lambda d: torch.randn(16, 6, dtype=d)),
    "mlp-relu": (lambda: mlp(nn.ReLU), lambda d: torch.randn(16, 6, dtype=d)),
    "grouped": (_grouped, lambda d: torch.randn(16, 6, dtype=d)),
    "cnn": (cnn, lambda d: torch.randn(8, 1, 8, 8, dtype=d)),
    "pooled": (_pooled, lambda d: torch.randn(8, 1, 8, 8, dtype=d)),
    "wide": (_wide, lambda d: torch.randn(64, 72, dtype=d)),
}


def _pair(model: str, dtype: torch.dtype, **kwargs: object) -> tuple[PCNetwork, PCNetwork, Tensor]:
    make, data = MODELS[model]
    torch.manual_seed(0)
    module = make().to(dtype)
    fused = PCNetwork(module, fused=True, **kwargs)  # type: ignore[arg-type]
    eager = PCNetwork(module, fused=False, **kwargs)  # type: ignore[arg-type]
    torch.manual_seed(1)
    return fused, eager, data(dtype)


def _agree(fused: PCNetwork, eager: PCNetwork, x: Tensor, y: Tensor, loss: str, dtype: torch.dtype) -> None:
    """float64: the two updates agree to 1e-10 of each tensor's largest entry. float32: both are
    roundings of the float64 update; the fused one must be as close to it as the eager one (twice
    the eager path's error, plus 1e-5 of the network's largest entry), since its kernels may
    round differently (a float32 ``tanh`` through ``sigmoid``)."""
    got, want = fused.pc_gradients(x, y, loss=loss), eager.pc_gradients(x, y, loss=loss)
    if dtype == torch.float64:
        _close(got, want, TOL[dtype])
        return
    exact = PCNetwork(copy.deepcopy(eager.module).double(), fused=False, algorithm=eager.algorithm, T=eager.T,
                      x_lr=eager.x_lr)
    ref = exact.pc_gradients(x.double(), y if loss == "ce" else y.double(), loss=loss)
    assert got.keys() == ref.keys()
    scale = max(float(r.abs().max()) for r in ref.values())
    for name, r in ref.items():
        fused_error = float((got[name].double() - r).abs().max())
        eager_error = float((want[name].double() - r).abs().max())
        assert fused_error <= 2 * eager_error + TOL[dtype] * scale, (name, fused_error, eager_error, scale)


def _target(net: PCNetwork, x: Tensor, loss: str) -> Tensor:
    with torch.no_grad():
        out = net(x)
    if loss == "ce":
        return torch.randint(0, out.shape[-1], (x.shape[0],))
    return torch.randn_like(out)


def _close(a: dict[str, Tensor], b: dict[str, Tensor], tol: float) -> None:
    assert a.keys() == b.keys()
    for name in a:
        scale = max(float(b[name].abs().max()), 1e-12)
        assert float((a[name] - b[name]).abs().max()) <= tol * scale, name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("algorithm,T", [("il", 1), ("il", 7), ("fpa", None), ("exact", None)])
@pytest.mark.parametrize("model", list(MODELS))
def test_fused_update_equals_autograd_path(model: str, algorithm: str, T: int | None, loss: str,
                                          dtype: torch.dtype) -> None:
    fused, eager, x = _pair(model, dtype, algorithm=algorithm, T=T)
    y = _target(eager, x, loss)
    _agree(fused, eager, x, y, loss, dtype)
    assert fused.has_fused_path and not eager.has_fused_path
    record_f = fused.train_step(x, y, loss=loss)
    record_e = eager.train_step(x, y, loss=loss)
    assert record_f.steps == record_e.steps
    torch.testing.assert_close(torch.tensor(record_f.energy), torch.tensor(record_e.energy),
                               rtol=TOL[dtype], atol=1e-12)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")
def test_wide_float32_products_go_through_onednn(monkeypatch: pytest.MonkeyPatch) -> None:
    """The "wide" cases above take the oneDNN GEMM (so their agreement tests cover it); float64 does not."""
    from pcctrl.core import fused as fused_module

    calls: list[torch.dtype] = []
    real = fused_module._ONEDNN_LINEAR

    def counting(x: Tensor, *args: object) -> Tensor:
        calls.append(x.dtype)
        return real(x, *args)

    monkeypatch.setattr(fused_module, "_ONEDNN_LINEAR", counting)
    for dtype in (torch.float32, torch.float64):
        fused, _, x = _pair("wide", dtype, algorithm="il", T=4)
        fused.pc_gradients(x, torch.randn(x.shape[0], 8, dtype=dtype))
    assert calls and set(calls) == {torch.float32}


def test_unknown_layers_use_the_autograd_path() -> None:
    """Unflatten is not a layer the fused path knows: the whole network falls back, same result."""
    torch.manual_seed(0)
    net = PCNetwork(_mixed().double(), algorithm="il", T=5)
    x = torch.randn(4, 2, 8, dtype=torch.float64)
    net.pc_gradients(x, torch.randn(4, 1, 3, 3, dtype=torch.float64))
    assert not net.has_fused_path
    known = nn.Sequential(*list(_mixed())[:-1]).double()
    fused, eager = PCNetwork(known, T=5), PCNetwork(known, T=5, fused=False)
    y = torch.randn(4, 9, dtype=torch.float64)
    _close(fused.pc_gradients(x, y), eager.pc_gradients(x, y), 1e-10)
    assert fused.has_fused_path


def test_tolerance_stops_both_paths_at_the_same_step() -> None:
    fused, eager, x = _pair("mlp-tanh", torch.float64, algorithm="il", T=200, tol=1e-4)
    y = _target(eager, x, "mse")
    record_f, record_e = fused.train_step(x, y), eager.train_step(x, y)
    assert record_f.converged and record_e.converged and record_f.steps == record_e.steps < 200


def test_settings_the_fused_path_cannot_run_fall_back() -> None:
    """Missing inputs, non-unit precisions and node optimizers take the autograd path, unchanged."""
    torch.manual_seed(0)
    module = mlp(nn.Tanh).double()
    x = torch.randn(8, 6, dtype=torch.float64)
    y = torch.randn(8, 4, dtype=torch.float64)
    x_missing = x.clone()
    x_missing[0, 0] = float("nan")
    for kwargs, inputs in (({}, x_missing), ({"precisions": {"x5": Precision.scalar(0.5)}}, x),
                           ({"node_optimizer": lambda xs: torch.optim.SGD(xs, lr=0.1)}, x)):
        fused = PCNetwork(module, T=4, **kwargs)  # type: ignore[arg-type]
        eager = PCNetwork(module, T=4, fused=False, **kwargs)  # type: ignore[arg-type]
        _close(fused.pc_gradients(inputs, y), eager.pc_gradients(inputs, y), 1e-12)


def test_fused_step_leaves_inputs_and_targets_untouched() -> None:
    fused, _, x = _pair("cnn", torch.float32, algorithm="il", T=6)
    y = torch.randn(x.shape[0], 4)
    x_copy, y_copy = x.clone(), y.clone()
    opt = torch.optim.SGD(fused.parameters(), lr=0.01)
    fused.train_step(x, y, opt)
    assert torch.equal(x, x_copy) and torch.equal(y, y_copy)
    assert all(p.grad is not None and p.grad.is_contiguous() for p in fused.parameters())


@pytest.mark.parametrize("model", ["cnn", "grouped", "pooled"])
def test_reused_buffers_keep_every_call_exact(model: str) -> None:
    """The fused path writes into persistent buffers: calls with changing batch sizes still match
    the autograd path, and a later call never alters what an earlier call returned."""
    fused, eager, x = _pair(model, torch.float64, algorithm="il", T=6)
    earlier: list[tuple[dict[str, Tensor], dict[str, Tensor]]] = []
    for rows in (x.shape[0], 3, x.shape[0], 5):
        inputs = x[:rows] + 0.1 * rows
        y = _target(eager, inputs, "mse")
        got = fused.pc_gradients(inputs, y)
        _close(got, eager.pc_gradients(inputs, y), 1e-10)
        earlier.append((got, {name: g.clone() for name, g in got.items()}))
    for got, copy in earlier:
        assert all(torch.equal(got[name], copy[name]) for name in got)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_implicit_first_node_matches_autograd_path(loss: str, dtype: torch.dtype,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """At large T the first hidden node is carried implicitly (one matmul per step less): the
    update and the energy trace still match the autograd path, and the implicit form is used."""
    from pcctrl.core import fused as fused_module

    made: list[object] = []
    real = fused_module._ImplicitFirst.__init__

    def counting(self: object, *args: object) -> None:
        made.append(self)
        real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(fused_module._ImplicitFirst, "__init__", counting)
    fused, eager, x = _pair("grouped", dtype, algorithm="il", T=20)
    y = _target(eager, x, loss)
    _agree(fused, eager, x, y, loss, dtype)
    record_f, record_e = fused.train_step(x, y, loss=loss), eager.train_step(x, y, loss=loss)
    torch.testing.assert_close(torch.tensor(record_f.energy), torch.tensor(record_e.energy),
                               rtol=TOL[dtype], atol=1e-12)
    assert len(made) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("algorithm", ["il", "exact"])
def test_fused_path_on_cuda_matches_cpu(algorithm: str) -> None:
    fused, _, x = _pair("cnn", torch.float64, algorithm=algorithm, T=5)
    y = _target(fused, x, "mse")
    want = fused.pc_gradients(x, y)
    fused.to("cuda")
    got = fused.pc_gradients(x.cuda(), y.cuda())
    _close({k: v.cpu() for k, v in got.items()}, want, 1e-10)
