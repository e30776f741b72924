"""Small models used across the core tests: MLP, CNN, residual block, unrolled LSTM cell."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def mlp(activation: type[nn.Module], sizes: tuple[int, ...] = (6, 12, 10, 4)) -> nn.Sequential:
    """A layered MLP with ``activation`` between linear layers."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def cnn(classes: int = 4) -> nn.Sequential:
    """Conv + pooling + linear head on 1x8x8 images."""
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16, classes),
    )


class ResidualBlock(nn.Module):
    """A branching graph: ``y = head(relu(x + f(x)))`` with a two-layer branch ``f``."""

    def __init__(self, width: int = 8, out: int = 4) -> None:
        super().__init__()
        self.inp = nn.Linear(5, width)
        self.branch1 = nn.Linear(width, width)
        self.branch2 = nn.Linear(width, width)
        self.head = nn.Linear(width, out)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.inp(x))
        r = self.branch2(torch.relu(self.branch1(h)))
        return self.head(torch.relu(h + r))


class UnrolledLSTM(nn.Module):
    """An LSTM cell written with gates, unrolled over ``steps`` time steps, shared weights."""

    def __init__(self, inputs: int = 3, hidden: int = 6, out: int = 4, steps: int = 5) -> None:
        super().__init__()
        self.hidden = hidden
        self.steps = steps
        self.x2g = nn.Linear(inputs, 4 * hidden)
        self.h2g = nn.Linear(hidden, 4 * hidden, bias=False)
        self.head = nn.Linear(hidden, out)

    def forward(self, x: Tensor) -> Tensor:
        h = x[:, 0, :1].mul(0.0).expand(-1, self.hidden)
        c = h
        for t in range(self.steps):
            gates = self.x2g(x[:, t]) + self.h2g(h)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return self.head(h)


class TorchLSTMCell(nn.Module):
    """``nn.LSTMCell`` (a leaf module returning a tuple) unrolled over ``steps`` steps."""

    def __init__(self, inputs: int = 3, hidden: int = 6, out: int = 4, steps: int = 5) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(inputs, hidden)
        self.head = nn.Linear(hidden, out)
        self.steps = steps

    def forward(self, x: Tensor) -> Tensor:
        state = self.cell(x[:, 0])
        for t in range(1, self.steps):
            state = self.cell(x[:, t], state)
        return self.head(state[0])
