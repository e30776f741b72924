"""PCGraph basics: the same engine as PCNetwork, explicit edges, sums of incoming predictions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcctrl import PCGraph, PCNetwork, Precision


def _chain() -> tuple[PCGraph, nn.Module, nn.Module]:
    torch.manual_seed(0)
    first = nn.Sequential(nn.Linear(3, 6), nn.Tanh()).double()
    second = nn.Linear(6, 2).double()
    graph = PCGraph({"a": 3, "h": 6, "b": 2}, [("a", "h", first), ("h", "b", second)], algorithm="exact")
    return graph, first, second


def test_acyclic_graph_with_exact_equals_backprop() -> None:
    graph, first, second = _chain()
    a = torch.randn(8, 3, dtype=torch.float64)
    b = torch.randn(8, 2, dtype=torch.float64)
    graph.train_step({"a": a, "b": b})
    loss = 0.5 * (b - second(first(a))).square().sum(1).mean()
    reference = torch.autograd.grad(loss, list(first.parameters()) + list(second.parameters()))
    for param, want in zip(list(first.parameters()) + list(second.parameters()), reference):
        torch.testing.assert_close(param.grad, want)


def test_same_as_pcnetwork_for_a_chain_under_il() -> None:
    graph, first, second = _chain()
    graph.algorithm = "il"
    graph.T, graph.x_lr = 15, 0.1
    net = PCNetwork(nn.Sequential(first, second), algorithm="il", T=15, x_lr=0.1)
    a = torch.randn(8, 3, dtype=torch.float64)
    b = torch.randn(8, 2, dtype=torch.float64)
    from_graph = graph.infer({"a": a, "b": b})
    from_net = net.relax(a, b)
    torch.testing.assert_close(from_graph.values["h"], from_net.values["x1"])
    assert from_graph.energy == pytest.approx(from_net.energy)


def test_prediction_is_the_sum_of_incoming_edges() -> None:
    torch.manual_seed(0)
    left, right = nn.Linear(2, 3), nn.Linear(4, 3)
    graph = PCGraph({"l": 2, "r": 4, "t": 3}, [("l", "t", left), ("r", "t", right)], T=5)
    l, r = torch.randn(5, 2), torch.randn(5, 4)
    result = graph.infer({"l": l, "r": r})
    torch.testing.assert_close(result.values["t"], left(l) + right(r))
    assert result.energy == [0.0] and result.steps == 0  # nothing to infer


def test_diagonal_precision_weights_a_node() -> None:
    """A free root latent seen by two sensors settles at their precision-weighted mean."""
    torch.manual_seed(0)
    edges = lambda: [("z", "o1", nn.Identity()), ("z", "o2", nn.Identity())]  # noqa: E731
    graph = PCGraph({"z": 1, "o1": 1, "o2": 1}, edges(),
                    precisions={"o1": Precision.diagonal(torch.tensor([9.0])), "o2": Precision.diagonal(torch.tensor([1.0]))},
                    T=400, x_lr=0.05)
    z = graph.infer({"o1": torch.ones(1, 1), "o2": torch.zeros(1, 1)}).values["z"]
    torch.testing.assert_close(z, torch.full((1, 1), 0.9), atol=1e-4, rtol=0)  # precision-weighted mean


def test_incremental_pc_on_a_cyclic_graph_lowers_the_energy() -> None:
    torch.manual_seed(0)
    graph = PCGraph({"a": 4, "h": 8}, [("a", "h", nn.Linear(4, 8)), ("h", "a", nn.Sequential(nn.Tanh(), nn.Linear(8, 4)))],
                    algorithm="ipc", T=10, x_lr=0.1)
    optimizer = torch.optim.Adam(graph.parameters(), lr=0.01)
    data = torch.randn(64, 4)
    first = graph.train_step({"a": data}, optimizer).energy[0]
    for _ in range(100):
        record = graph.train_step({"a": data}, optimizer)
    assert record.energy[0] < 0.3 * first


def test_duplicate_edges_and_bad_names() -> None:
    graph = PCGraph({"a": 2, "b": 2}, [("a", "b", nn.Linear(2, 2))])
    with pytest.raises(ValueError, match="already exists"):
        graph.connect("a", "b", nn.Linear(2, 2))
    with pytest.raises(ValueError, match="without '.'"):
        PCGraph({"a.b": 2})
