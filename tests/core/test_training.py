"""PCNetwork learning end to end: every algorithm trains; options behave as documented."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from models import ResidualBlock, mlp
from pcctrl import PCNetwork
from pcctrl.core.diagnostics import bp_alignment, energy_trace, output_loss


def _regression(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(512, 2, generator=gen) * 4 - 2
    y = torch.stack([torch.sin(x[:, 0]) * x[:, 1], torch.cos(x[:, 1])], dim=1)
    return x, y


def _fit(net: nn.Module, step, epochs: int = 60) -> float:
    x, y = _regression()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(epochs):
        for i in range(0, 512, 64):
            step(net, x[i:i + 64], y[i:i + 64], optimizer)
    with torch.no_grad():
        return float(output_loss(net(x), y, "mse"))


def _backprop(net: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad()
    output_loss(net(x), y, "mse").backward()
    optimizer.step()


@pytest.mark.parametrize("algorithm", ["il", "fpa", "exact", "ipc"])
def test_every_algorithm_learns_a_regression(algorithm: str) -> None:
    torch.manual_seed(0)
    reference = mlp(nn.Tanh, (2, 32, 32, 2))
    torch.manual_seed(0)
    module = mlp(nn.Tanh, (2, 32, 32, 2))
    x, y = _regression()
    with torch.no_grad():
        start = float(output_loss(module(x), y, "mse"))
    bp = _fit(reference, _backprop)
    kwargs = {"T": 20, "x_lr": 0.1} if algorithm in ("il", "ipc") else {}
    pc = _fit(PCNetwork(module, algorithm=algorithm, **kwargs), lambda n, a, b, o: n.train_step(a, b, o))
    assert pc < 0.1 * start
    assert pc < 3 * bp + 0.01, (pc, bp)


def test_exact_training_follows_backprop_step_for_step() -> None:
    torch.manual_seed(3)
    a = mlp(nn.Tanh, (2, 16, 2)).double()
    b = mlp(nn.Tanh, (2, 16, 2)).double()
    b.load_state_dict(a.state_dict())
    x, y = (t.double() for t in _regression())
    net = PCNetwork(b, algorithm="exact")
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
    opt_b = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for i in range(0, 512, 32):
        _backprop(a, x[i:i + 32], y[i:i + 32], opt_a)
        net.train_step(x[i:i + 32], y[i:i + 32], opt_b)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-9, atol=1e-11)


def test_node_optimizer_and_tolerance() -> None:
    torch.manual_seed(0)
    x, y = _regression()
    module = mlp(nn.Tanh, (2, 16, 2))
    adam_nodes = PCNetwork(module, T=200, node_optimizer=lambda xs: torch.optim.Adam(xs, lr=0.05))
    trace = adam_nodes.relax(x[:32], y[:32]).energy
    assert trace[-1] < 0.9 * trace[0]
    early = PCNetwork(module, T=500, x_lr=0.1, tol=1e-4)
    result = early.relax(x[:32], y[:32])
    assert result.converged and result.steps < 500
    full = PCNetwork(module, T=500, x_lr=0.1).relax(x[:32], y[:32])
    assert abs(result.energy[-1] - full.energy[-1]) < 0.01 * full.energy[0]


def test_train_step_without_optimizer_writes_grad_only() -> None:
    torch.manual_seed(0)
    net = PCNetwork(mlp(nn.Tanh, (2, 8, 2)), algorithm="exact")
    before = [p.detach().clone() for p in net.parameters()]
    x, y = _regression()
    record = net.train_step(x[:16], y[:16])
    assert record.algorithm == "exact" and record.steps == net.depth
    assert record.energy[0] > 0
    for p, saved in zip(net.parameters(), before):
        assert torch.equal(p, saved) and p.grad is not None


def test_missing_targets_have_zero_precision() -> None:
    """NaN target entries drop out: the update equals backprop on the observed entries only."""
    torch.manual_seed(0)
    net = PCNetwork(mlp(nn.Tanh, (3, 8, 4)).double(), algorithm="exact")
    x = torch.randn(10, 3, dtype=torch.float64)
    y = torch.randn(10, 4, dtype=torch.float64)
    y[torch.rand(10, 4) < 0.3] = float("nan")
    pc = net.pc_gradients(x, y)
    observed = ~torch.isnan(y)
    loss = 0.5 * torch.where(observed, y - net(x), torch.zeros(())).square().sum(-1).mean()
    names = [n for n, _ in net.named_parameters()]
    reference = torch.autograd.grad(loss, list(net.parameters()))
    for name, ref in zip(names, reference):
        torch.testing.assert_close(pc[name], ref)


def test_missing_inputs_are_inferred() -> None:
    """A NaN entry in the input is inferred; observed entries stay clamped."""
    torch.manual_seed(0)
    net = PCNetwork(mlp(nn.Tanh, (3, 8, 2)).double(), T=300, x_lr=0.1)
    x = torch.randn(5, 3, dtype=torch.float64)
    y = net(x).detach()
    corrupted = x.clone()
    corrupted[:, 0] = float("nan")
    result = net.relax(corrupted, y)
    values = result.values["x0"]
    torch.testing.assert_close(values[:, 1:], x[:, 1:])
    assert torch.isfinite(values).all()
    assert result.energy[-1] < result.energy[0]


def test_same_seed_same_numbers() -> None:
    def run() -> list[float]:
        torch.manual_seed(7)
        net = PCNetwork.from_module(ResidualBlock(), T=10)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
        x = torch.randn(16, 5)
        y = torch.randn(16, 4)
        return [e for _ in range(3) for e in net.train_step(x, y, optimizer).energy]

    assert run() == run()


def test_state_dict_round_trip_has_no_duplicates() -> None:
    torch.manual_seed(0)
    net = PCNetwork.from_module(ResidualBlock(), algorithm="exact")
    x = torch.randn(4, 5)
    net.train_step(x, torch.randn(4, 4))
    keys = list(net.state_dict())
    assert all(k.startswith("module.") for k in keys) and len(keys) == 8
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    other = PCNetwork.from_module(ResidualBlock(), algorithm="exact")
    other.load_state_dict(torch.load(buffer))
    torch.testing.assert_close(other(x), net(x))


def test_energy_trace_and_depth() -> None:
    torch.manual_seed(0)
    net = PCNetwork(mlp(nn.Tanh, (2, 8, 8, 2)), T=15, x_lr=0.1)
    x, y = _regression()
    trace = energy_trace(net, x[:8], y[:8])
    assert len(trace) == 16 and trace[-1] < trace[0]
    assert net.depth == 5
    assert energy_trace(net, x[:8]) == [0.0] * 16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu() -> None:
    torch.manual_seed(0)
    module = mlp(nn.Tanh, (6, 12, 4)).double()
    x = torch.randn(16, 6, dtype=torch.float64)
    y = torch.randn(16, 4, dtype=torch.float64)
    cpu = PCNetwork(module, algorithm="il", T=10).pc_gradients(x, y)
    gpu_net = PCNetwork(module.cuda(), algorithm="il", T=10)
    gpu = gpu_net.pc_gradients(x.cuda(), y.cuda())
    for name in cpu:
        torch.testing.assert_close(gpu[name].cpu(), cpu[name])
    assert max(a.relative_error for a in bp_alignment(PCNetwork(module, algorithm="exact"), x.cuda(), y.cuda()).values()) < 1e-10


def test_clamping_the_output_generates_an_input() -> None:
    """With the whole input missing (NaN), relaxation finds the minimum-norm input explaining y."""
    torch.manual_seed(0)
    layer = nn.Linear(5, 2).double()
    net = PCNetwork(nn.Sequential(layer), T=3000, x_lr=0.5)
    y = torch.randn(4, 2, dtype=torch.float64)
    generated = net.relax(torch.full((4, 5), float("nan"), dtype=torch.float64), y).values["x0"]
    with torch.no_grad():
        expected = (y - layer.bias) @ torch.linalg.pinv(layer.weight).T
    torch.testing.assert_close(generated, expected, atol=1e-6, rtol=0)
