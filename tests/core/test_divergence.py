"""The divergence guard, one non-finite error type, and dtype / empty-batch / complex inputs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from models import mlp
from pcctrl import PCGraph, PCNetwork
from pcctrl.core.guard import DivergenceGuard
from pcctrl.errors import (
    DivergenceError,
    DTypeError,
    InvalidArgumentError,
    NonFiniteEnergyError,
    ShapeError,
)

ALGORITHMS = ["il", "fpa", "exact", "ipc"]
OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=1e6),
    "adam": lambda params: torch.optim.Adam(params, lr=1e6),
    "sgd-momentum": lambda params: torch.optim.SGD(params, lr=1e6, momentum=0.9),
}


def _net(algorithm: str, fused: bool = True, **kwargs: object) -> PCNetwork:
    torch.manual_seed(0)
    return PCNetwork(mlp(nn.Tanh, (6, 12, 10, 4)), algorithm=algorithm, fused=fused, **kwargs)  # type: ignore[arg-type]


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    return torch.randn(16, 6, generator=gen), torch.randn(16, 4, generator=gen)


def _snapshot(net: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[list[torch.Tensor], dict]:
    return [p.detach().clone() for p in net.parameters()], copy.deepcopy(optimizer.state_dict())


def _unchanged(net: nn.Module, optimizer: torch.optim.Optimizer, saved: tuple[list[torch.Tensor], dict]) -> None:
    params, state = saved
    for param, before in zip(net.parameters(), params):
        assert torch.equal(param.detach(), before)
    now = optimizer.state_dict()["state"]
    assert now.keys() == state["state"].keys()
    for key in now:
        for name, value in now[key].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state["state"][key][name]))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_huge_learning_rate_raises_before_any_parameter_changes(algorithm: str, optimizer: str, fused: bool) -> None:
    net = _net(algorithm, fused)
    opt = OPTIMIZERS[optimizer](net.parameters())
    x, y = _batch()
    net.train_step(x, y, torch.optim.SGD(net.parameters(), lr=1e-3))  # a sane step first: builds the graph
    saved = _snapshot(net, opt)
    # ipc steps the weights inside relaxation: the energy of the next inference step explodes first.
    with pytest.raises(DivergenceError, match="max_update" if algorithm != "ipc" else "max_update|energy grew"):
        net.train_step(x, y, opt)
    _unchanged(net, opt, saved)


@pytest.mark.parametrize("algorithm", ["il", "fpa", "exact"])
def test_without_the_guard_the_same_step_goes_through(algorithm: str) -> None:
    net = _net(algorithm, guard=None)
    opt = torch.optim.SGD(net.parameters(), lr=1e6)
    x, y = _batch()
    before = [p.detach().clone() for p in net.parameters()]
    net.train_step(x, y, opt)
    assert max(float((p.detach() - b).abs().max()) for p, b in zip(net.parameters(), before)) > 100


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
def test_growing_energy_raises_divergence_before_nan(fused: bool) -> None:
    net = _net("il", fused, T=50, x_lr=3.0)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x, y = _batch()
    saved = _snapshot(net, opt)
    with pytest.raises(DivergenceError, match="energy grew"):
        net.train_step(5 * x, 5 * y, opt)
    _unchanged(net, opt, saved)
    net.guard = DivergenceGuard(energy_growth=None)
    with pytest.raises(NonFiniteEnergyError):
        net.train_step(5 * x, 5 * y, opt)
    _unchanged(net, opt, saved)


def test_pc_graph_relaxation_is_guarded() -> None:
    torch.manual_seed(0)
    graph = PCGraph({"a": 3, "b": 4}, [("a", "b", nn.Linear(3, 4)), ("b", "a", nn.Linear(4, 3))], T=60, x_lr=4.0)
    with pytest.raises(DivergenceError):
        graph.infer({"a": 10 * torch.randn(5, 3)})


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_non_finite_energy_is_one_error_type(algorithm: str, fused: bool) -> None:
    torch.manual_seed(0)
    net = PCNetwork(mlp(nn.ReLU, (6, 12, 4)), algorithm=algorithm, fused=fused)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x, y = _batch()
    saved = _snapshot(net, opt)
    with pytest.raises(NonFiniteEnergyError):
        net.train_step(x * 1e30, y, opt)
    _unchanged(net, opt, saved)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
def test_float64_inputs_are_cast_to_the_network_dtype(fused: bool) -> None:
    x, y = _batch()
    a, b = _net("il", fused), _net("il", fused)
    got = a.pc_gradients(x.double(), y.double())
    want = b.pc_gradients(x, y)
    for name in want:
        assert got[name].dtype == torch.float32
        assert torch.equal(got[name], want[name])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_empty_batch_and_complex_inputs_are_refused(algorithm: str) -> None:
    net = _net(algorithm)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    saved = _snapshot(net, opt)
    with pytest.raises(ShapeError, match="empty"):
        net.train_step(torch.zeros(0, 6), torch.zeros(0, 4), opt)
    with pytest.raises(DTypeError, match="complex"):
        net.train_step(torch.randn(4, 6, dtype=torch.complex64), torch.randn(4, 4), opt)
    with pytest.raises(DTypeError, match="complex"):
        net.train_step(torch.randn(4, 6), torch.randn(4, 4, dtype=torch.complex64), opt)
    _unchanged(net, opt, saved)


def test_guard_bounds_are_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="energy_growth"):
        DivergenceGuard(energy_growth=1.0)
    with pytest.raises(InvalidArgumentError, match="max_update"):
        DivergenceGuard(max_update=0.0)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_ipc_whole_step_move_is_bounded_and_rolled_back(optimizer: str) -> None:
    net = _net("ipc", guard=DivergenceGuard(energy_growth=None, max_update=1e-6))
    opt = torch.optim.SGD(net.parameters(), lr=0.1) if optimizer == "sgd" else torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = _batch()
    saved = _snapshot(net, opt)
    with pytest.raises(DivergenceError, match="max_update"):
        net.train_step(x, y, opt)
    _unchanged(net, opt, saved)


@pytest.mark.parametrize("seed", range(6))
def test_update_bound_reads_parameter_norms_only_when_needed_and_agrees(seed: int) -> None:
    """``_violation`` (parameter norms read lazily) names the same first parameter as the bound written out."""
    from pcctrl.core.guard import _violation

    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(n, generator=gen) * float(torch.rand((), generator=gen)) * 5 for n in (3, 50, 7, 400)]
    moves = [torch.randn(p.shape, generator=gen) * float(torch.rand((), generator=gen)) * 30 for p in params]
    rates = [0.1, 1.0, 0.5, 2.0]
    bound = 3.0
    expected = None
    for index, (move, param, rate) in enumerate(zip(moves, params, rates)):
        rms_move = rate * float(move.norm()) / param.numel() ** 0.5
        if rms_move > bound * (1 + float(param.norm()) / param.numel() ** 0.5):
            expected = index
            break
    got = _violation(moves, params, bound, rates)
    assert (got[0] if got is not None else None) == expected
    if got is not None:
        assert got[1] == pytest.approx(rates[expected] * float(moves[expected].norm()) / params[expected].numel() ** 0.5)


def test_write_gradients_returns_norms_and_refuses_non_finite() -> None:
    from pcctrl.core.learning import write_gradients
    from pcctrl.errors import NonFiniteError

    a, b, c = (nn.Parameter(torch.zeros(s)) for s in ((2, 3), (4,), (5,)))
    grads = [torch.arange(6.0).reshape(2, 3), None, torch.full((5,), 1e30)]
    norms = write_gradients([a, b, c], grads)
    assert norms[id(a)] == pytest.approx(float(torch.arange(6.0).norm()))
    assert norms[id(b)] == 0.0 and torch.equal(b.grad, torch.zeros(4))
    assert norms[id(c)] == float("inf")  # finite entries whose norm overflows float32: written, norm inf
    before = [p.grad.clone() for p in (a, b, c)]
    with pytest.raises(NonFiniteError):
        write_gradients([a, b, c], [torch.full((2, 3), float("nan")), None, None])
    assert all(torch.equal(p.grad, g) for p, g in zip((a, b, c), before))
