"""Bad input gets a precise exception, and a failed step leaves the parameters as they were."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import mlp
from pcctrl.core.guard import DivergenceGuard
from pcctrl.errors import DivergenceError
from pcctrl import NodeShapeError, NonFiniteEnergyError, PCGraph, PCNetwork, Precision, UnknownNodeError


def _net(algorithm: str = "il", **kwargs: object) -> PCNetwork:
    torch.manual_seed(0)
    return PCNetwork(mlp(nn.Tanh, (3, 5, 2)), algorithm=algorithm, **kwargs)  # type: ignore[arg-type]


def test_wrong_target_shape_names_the_output_node() -> None:
    net = _net()
    with pytest.raises(NodeShapeError, match="'x3'.*expected shape \\(batch, 2\\)"):
        net.train_step(torch.randn(4, 3), torch.randn(4, 3))


def test_batch_mismatch_is_refused() -> None:
    with pytest.raises(NodeShapeError, match="batch size 5"):
        _net().train_step(torch.randn(4, 3), torch.randn(5, 2))


def test_wrong_input_shape_names_the_layer() -> None:
    net = _net()
    net.graph(torch.randn(1, 3))
    with pytest.raises(NodeShapeError, match="'x0'"):
        net.train_step(torch.randn(4, 7), torch.randn(4, 2))


def test_unknown_algorithm_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown algorithm 'bp'.*'il', 'fpa', 'exact', 'ipc'"):
        _net("bp")


def test_unknown_loss_and_bad_settings() -> None:
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        _net().train_step(torch.randn(4, 3), torch.randn(4, 2), loss="l1")
    with pytest.raises(ValueError, match="x_lr must be positive"):
        _net(x_lr=0.0)
    with pytest.raises(ValueError, match="T must be"):
        _net(T=-1)


def test_unknown_node_is_named() -> None:
    graph = PCGraph({"a": 2, "b": 3}, [("a", "b", nn.Linear(2, 3))])
    with pytest.raises(UnknownNodeError, match="'c'.*\\['a', 'b'\\]"):
        graph.infer({"c": torch.randn(1, 2)})
    with pytest.raises(KeyError, match="unknown node 'z'"):
        graph.connect("a", "z", nn.Linear(2, 3))
    with pytest.raises(KeyError, match="'q'"):
        PCGraph({"a": 2}, precisions={"q": Precision.scalar(2.0)})


def test_edge_with_wrong_output_shape() -> None:
    graph = PCGraph({"a": 2, "b": 3})
    with pytest.raises(ValueError, match="maps to shape \\(4,\\), node 'b' has shape \\(3,\\)"):
        graph.connect("a", "b", nn.Linear(2, 4))


def test_inf_in_a_clamp_is_refused_nan_is_missing() -> None:
    net = _net()
    x = torch.randn(4, 3)
    x[0, 1] = float("inf")
    with pytest.raises(ValueError, match="'x0'.*inf; use NaN"):
        net.train_step(x, torch.randn(4, 2))


def test_class_labels_out_of_range() -> None:
    with pytest.raises(ValueError, match="class labels must lie in \\[0, 2\\)"):
        _net("exact").train_step(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), loss="ce")


def test_non_tensor_clamp() -> None:
    with pytest.raises(TypeError, match="must be torch.Tensor"):
        _net().train_step([[1.0, 2.0, 3.0]], torch.randn(1, 2))  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["il", "ipc"])
@pytest.mark.parametrize("guarded", [True, False])
def test_divergent_relaxation_names_nodes_and_keeps_parameters(algorithm: str, guarded: bool) -> None:
    # With the divergence guard the growing energy is caught first; without it, the NaN is.
    net = _net(algorithm, T=200, x_lr=50.0)
    if not guarded:
        net.guard = DivergenceGuard(energy_growth=None, max_update=None)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    before = [p.detach().clone() for p in net.parameters()]
    state_before = {k: v for k, v in optimizer.state_dict().items()}
    expected = (DivergenceError, "energy grew") if guarded else (NonFiniteEnergyError, "node\\(s\\) \\[.*'x")
    with pytest.raises(expected[0], match=expected[1]):
        net.train_step(10 * torch.randn(8, 3), 10 * torch.randn(8, 2), optimizer)
    for param, saved in zip(net.parameters(), before):
        assert torch.equal(param, saved)
    assert optimizer.state_dict()["state"] == state_before["state"]


def test_cyclic_graph_refuses_fixed_prediction() -> None:
    graph = PCGraph({"a": 2, "b": 2}, [("a", "b", nn.Linear(2, 2)), ("b", "a", nn.Linear(2, 2))], algorithm="fpa")
    with pytest.raises(ValueError, match="'fpa' needs an acyclic graph"):
        graph.train_step({"a": torch.randn(3, 2), "b": torch.randn(3, 2)})


def test_ipc_needs_an_optimizer() -> None:
    with pytest.raises(ValueError, match="pass an optimizer"):
        _net("ipc").train_step(torch.randn(4, 3), torch.randn(4, 2))


def test_untraceable_module_explains() -> None:
    class DataDependent(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    with pytest.raises(TypeError, match="torch.fx could not trace DataDependent"):
        PCNetwork.from_module(DataDependent())


def test_bad_precisions() -> None:
    with pytest.raises(ValueError, match="positive"):
        Precision.scalar(-1.0)
    with pytest.raises(ValueError, match="symmetric positive definite"):
        Precision.full(torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    net = PCNetwork(nn.Sequential(nn.Linear(3, 2)), precisions={"x1": Precision.diagonal(torch.ones(3))})
    with pytest.raises(ValueError, match="diagonal precision has shape \\(3,\\)"):
        net.train_step(torch.randn(2, 3), torch.randn(2, 2))
