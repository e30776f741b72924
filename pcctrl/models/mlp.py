"""The small MLPs that pcctrl's learned models are made of."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def silu_mlp(sizes: Sequence[int], seed: int) -> nn.Sequential:
    """Linear layers of widths ``sizes`` with SiLU between, initialised from ``seed``.

    The caller's global random state is left as it was.
    """
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def tanh_mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Two tanh hidden layers of width ``hidden``: the networks of learned state-space models."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, out_dim))
