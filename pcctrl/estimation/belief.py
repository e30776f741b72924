"""``Belief``: a Gaussian belief over the state, as a mean and a covariance."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class Belief(NamedTuple):
    """Mean ``(..., n)`` and covariance ``(..., n, n)`` of the posterior over the state."""

    mean: Tensor
    cov: Tensor

    @property
    def var(self) -> Tensor:
        """Marginal variances (the covariance's diagonal)."""
        return self.cov.diagonal(dim1=-2, dim2=-1)

    @property
    def std(self) -> Tensor:
        """Marginal standard deviations."""
        return self.var.clamp_min(0).sqrt()
