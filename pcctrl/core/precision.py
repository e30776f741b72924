"""Precision (inverse covariance) of a node's prediction error: scalar, diagonal or full."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import InvalidArgumentError, NotPositiveDefiniteError, ShapeError

Kind = Literal["scalar", "diagonal", "full"]


class Precision(nn.Module):
    """The precision ``Pi`` of one node: fixed or learnable, positive by construction.

    Errors ``eps`` have shape ``(batch, *feature_shape)``. A diagonal precision has one value per
    feature entry; a full precision needs a flat feature vector. ``energy`` returns, per sample,
    ``1/2 eps^T Pi eps - 1/2 log det Pi`` restricted to the observed entries (a missing entry has
    zero precision: for a full precision this is the marginal precision of the observed block).
    """

    def __init__(self, kind: Kind, value: Tensor | float = 1.0, learnable: bool = False) -> None:
        super().__init__()
        if kind not in ("scalar", "diagonal", "full"):
            raise InvalidArgumentError("kind", f"must be 'scalar', 'diagonal' or 'full', got {kind!r}")
        self.kind: Kind = kind
        if not (isinstance(value, Tensor) and value.is_floating_point()):
            value = torch.as_tensor(value, dtype=torch.get_default_dtype())
        if kind == "scalar":
            if value.numel() != 1 or not bool(value.reshape(()) > 0):
                raise NotPositiveDefiniteError("value", f"a scalar precision must be one positive number, got {value}")
            raw = value.reshape(()).log()
        elif kind == "diagonal":
            if value.ndim == 0 or not bool((value > 0).all()):
                raise NotPositiveDefiniteError("value", "a diagonal precision needs a tensor of positive entries")
            raw = value.log()
        else:
            if value.ndim != 2 or value.shape[0] != value.shape[1]:
                raise ShapeError("value", f"a full precision needs a square matrix, got shape {tuple(value.shape)}")
            try:
                chol = torch.linalg.cholesky(value)
            except RuntimeError as exc:
                raise NotPositiveDefiniteError("value", "a full precision must be symmetric positive definite") from exc
            raw = torch.tril(chol, -1) + torch.diag(chol.diagonal().log())
        self.learnable = learnable
        if learnable:
            self.raw = nn.Parameter(raw.clone())
        else:
            self.register_buffer("raw", raw.clone())
        self.is_identity = (not learnable) and kind == "scalar" and float(value) == 1.0

    @classmethod
    def scalar(cls, value: float = 1.0, learnable: bool = False) -> "Precision":
        """One precision shared by every entry of the node."""
        return cls("scalar", value, learnable)

    @classmethod
    def diagonal(cls, value: Tensor, learnable: bool = False) -> "Precision":
        """One precision per entry; ``value`` has the node's feature shape."""
        return cls("diagonal", value, learnable)

    @classmethod
    def full(cls, matrix: Tensor, learnable: bool = False) -> "Precision":
        """A dense symmetric positive-definite precision over a flat feature vector."""
        return cls("full", matrix, learnable)

    def matrix(self, size: int | None = None) -> Tensor:
        """The precision as a dense matrix (``size`` is needed for a scalar precision)."""
        if self.kind == "full":
            chol = self._cholesky()
            return chol @ chol.T
        if self.kind == "diagonal":
            return torch.diag(self.raw.exp().reshape(-1))
        if size is None:
            raise InvalidArgumentError("size", "is needed to expand a scalar precision into a matrix")
        return self.raw.exp() * torch.eye(size, dtype=self.raw.dtype, device=self.raw.device)

    def _cholesky(self) -> Tensor:
        return torch.tril(self.raw, -1) + torch.diag(self.raw.diagonal().exp())

    def check_shape(self, feature_shape: torch.Size, node: str) -> None:
        """Raise if this precision cannot weigh errors of ``feature_shape``."""
        if self.kind == "diagonal" and tuple(self.raw.shape) != tuple(feature_shape):
            raise ShapeError(
                f"node {node!r}",
                f"diagonal precision has shape {tuple(self.raw.shape)}, "
                f"the node's entries have shape {tuple(feature_shape)}"
            )
        if self.kind == "full":
            size = math.prod(feature_shape)
            if self.raw.shape[0] != size:
                raise ShapeError(
                    f"node {node!r}",
                    f"full precision is {self.raw.shape[0]}x{self.raw.shape[0]}, "
                    f"the node has {size} entries"
                )

    def weigh(self, eps: Tensor, observed: Tensor | None = None) -> Tensor:
        """``Pi eps`` for a batch of errors: the gradient of ``energy`` with respect to ``eps``."""
        if observed is not None:
            eps = torch.where(observed, eps, torch.zeros((), dtype=eps.dtype, device=eps.device))
        if self.is_identity:
            return eps
        if self.kind == "full":
            if observed is not None and not bool(observed.all()):
                return self._marginal_weigh(eps, observed)
            flat = eps.reshape(eps.shape[0], -1)
            chol = self._cholesky()
            return ((flat @ chol) @ chol.T).reshape(eps.shape)
        return eps * self.raw.exp()

    def solve(self, signal: Tensor) -> Tensor:
        """``Pi^{-1} signal``: the error whose weighted value is ``signal``."""
        if self.is_identity:
            return signal
        if self.kind == "full":
            flat = signal.reshape(signal.shape[0], -1)
            return torch.cholesky_solve(flat.T, self._cholesky()).T.reshape(signal.shape)
        return signal / self.raw.exp()

    def total_energy(self, eps: Tensor, observed: Tensor | None = None) -> Tensor:
        """``energy`` summed over the batch, as a scalar."""
        if self.is_identity and observed is None:
            flat = eps.reshape(-1)
            return 0.5 * torch.dot(flat, flat)
        return self.energy(eps, observed).sum()

    def energy(self, eps: Tensor, observed: Tensor | None = None) -> Tensor:
        """Per-sample ``1/2 eps^T Pi eps - 1/2 log det Pi`` over the observed entries."""
        batch = eps.shape[0]
        if observed is not None:
            eps = torch.where(observed, eps, torch.zeros((), dtype=eps.dtype, device=eps.device))
        if self.kind == "full":
            if observed is not None and not bool(observed.all()):
                return self._marginal_energy(eps, observed)
            flat = eps.reshape(batch, -1)
            chol = self._cholesky()
            quad = 0.5 * (flat @ chol).square().sum(-1)
            return quad - self.raw.diagonal().sum()
        if self.is_identity:
            return 0.5 * eps.reshape(batch, -1).square().sum(-1)
        log_pi = self.raw.expand(eps.shape[1:]) if self.kind == "diagonal" else self.raw
        quad = 0.5 * (eps.square() * log_pi.exp()).reshape(batch, -1).sum(-1)
        log_pi = log_pi.expand(eps.shape)
        if observed is not None:
            log_pi = log_pi * observed
        return quad - 0.5 * log_pi.reshape(batch, -1).sum(-1)

    def _observed_block(self, eps: Tensor, observed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Cholesky factor of the observed covariance block (identity elsewhere) and its solve."""
        batch = eps.shape[0]
        flat = eps.reshape(batch, -1)
        obs = observed.reshape(batch, -1).to(flat.dtype)
        cov = torch.cholesky_inverse(self._cholesky())
        eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
        masked_cov = obs[:, :, None] * cov * obs[:, None, :] + (1 - obs)[:, :, None] * eye
        chol = torch.linalg.cholesky(masked_cov)
        solved = torch.cholesky_solve(flat.unsqueeze(-1), chol).squeeze(-1) * obs
        return flat, chol, solved

    def _marginal_energy(self, eps: Tensor, observed: Tensor) -> Tensor:
        flat, chol, solved = self._observed_block(eps, observed)
        quad = 0.5 * (flat * solved).sum(-1)
        return quad + chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def _marginal_weigh(self, eps: Tensor, observed: Tensor) -> Tensor:
        return self._observed_block(eps, observed)[2].reshape(eps.shape)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, learnable={self.learnable}"
