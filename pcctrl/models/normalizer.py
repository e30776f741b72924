"""``Normalizer``: per-feature standardisation fitted to data, stored as buffers."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InvalidArgumentError, ShapeError


class Normalizer(nn.Module):
    """Maps ``x`` to ``(x - mean) / std`` per feature; ``fit`` sets the statistics from data.

    Features whose spread is below ``min_std`` keep ``std = min_std`` so constant inputs do
    not blow up. Statistics are buffers, so they move with ``.to()`` and live in ``state_dict``.
    """

    def __init__(self, size: int, min_std: float = 1e-6) -> None:
        super().__init__()
        if size < 1:
            raise InvalidArgumentError("size", f"must be a positive number of features, got {size}")
        if not min_std > 0:
            raise InvalidArgumentError("min_std", f"must be positive, got {min_std}")
        self.size = size
        self.min_std = float(min_std)
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("std", torch.ones(size))

    def fit(self, data: Tensor) -> "Normalizer":
        """Set mean and std from ``data`` of shape ``(n, size)``."""
        if data.ndim != 2 or data.shape[1] != self.size:
            raise ShapeError("data", f"expected data of shape (n, {self.size}), got {tuple(data.shape)}")
        if data.shape[0] < 1:
            raise ShapeError("data", "cannot fit a normalizer to zero samples")
        if not bool(torch.isfinite(data).all()):
            raise InvalidArgumentError("data", "cannot fit a normalizer to non-finite data")
        data = data.to(self.mean)
        self.mean.copy_(data.mean(0))
        std = data.std(0, unbiased=False) if data.shape[0] > 1 else torch.ones_like(self.std)
        self.std.copy_(std.clamp_min(self.min_std))
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Standardise ``x`` (any leading shape, last dimension ``size``)."""
        return (x - self.mean) / self.std

    def inverse(self, z: Tensor) -> Tensor:
        """Undo :meth:`forward`."""
        return z * self.std + self.mean
