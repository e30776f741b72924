"""Property: at a stable step size, relaxation never increases the energy.

Smooth activations only: at a ReLU kink the energy gradient jumps and plain gradient steps may
overshoot by a little, as gradient descent does on any non-smooth function.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pcctrl import PCGraph, PCNetwork


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 24), min_size=2, max_size=5),
    batch=st.integers(1, 16),
    seed=st.integers(0, 2**31 - 1),
    activation=st.sampled_from([nn.Tanh, nn.Sigmoid, nn.Softplus, nn.GELU]),
)
def test_network_relaxation_descends(widths: list[int], batch: int, seed: int, activation: type[nn.Module]) -> None:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), activation()]
    net = PCNetwork(nn.Sequential(*layers[:-1]).double(), algorithm="il", T=30, x_lr=0.05)
    x = torch.randn(batch, widths[0], dtype=torch.float64)
    y = 2 * torch.randn(batch, widths[-1], dtype=torch.float64)
    energy = torch.tensor(net.relax(x, y).energy)
    assert torch.isfinite(energy).all()
    increases = energy[1:] - energy[:-1]
    assert (increases <= 1e-9 * energy[:-1].abs().clamp_min(1.0)).all(), energy


@settings(max_examples=15, deadline=None)
@given(size=st.integers(1, 12), hidden=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_cyclic_graph_relaxation_descends(size: int, hidden: int, seed: int) -> None:
    torch.manual_seed(seed)
    graph = PCGraph(
        {"a": size, "h": hidden, "b": size},
        [("a", "h", nn.Linear(size, hidden)), ("h", "b", nn.Sequential(nn.Tanh(), nn.Linear(hidden, size))),
         ("b", "h", nn.Linear(size, hidden)), ("h", "a", nn.Linear(hidden, size))],
        T=40, x_lr=0.05,
    ).double()
    energy = torch.tensor(graph.infer({"a": torch.randn(4, size, dtype=torch.float64)}).energy)
    assert (energy[1:] - energy[:-1] <= 1e-9 * energy[:-1].abs().clamp_min(1.0)).all(), energy
    assert energy[-1] < energy[0] or energy[0] == 0
