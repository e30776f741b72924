"""``Covariance``: a noise covariance (and its precision), fixed or learnable."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InvalidArgumentError, NotPositiveDefiniteError


def resolve_dtype(dtype: torch.dtype | None, *values: Any) -> torch.dtype:
    """``dtype`` if given, else the dtype of the first floating tensor/array among ``values``."""
    if dtype is not None:
        if not dtype.is_floating_point:
            raise InvalidArgumentError("dtype", f"must be a floating dtype, got {dtype}")
        return dtype
    for value in values:
        if isinstance(value, Tensor) and value.is_floating_point():
            return value.dtype
        if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            return torch.float64 if value.dtype == np.float64 else torch.float32
    return torch.get_default_dtype()


def as_matrix(value: Any, size: int, name: str, dtype: torch.dtype) -> Tensor:
    """A scalar (``c I``), a vector (diagonal) or a ``size x size`` matrix, as a finite tensor."""
    try:
        tensor = torch.as_tensor(np.asarray(value) if not isinstance(value, Tensor) else value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"cannot be read as a tensor ({exc})") from exc
    tensor = tensor.detach().to(dtype=dtype).clone()
    if tensor.ndim == 0:
        tensor = tensor * torch.eye(size, dtype=dtype)
    elif tensor.ndim == 1:
        if tensor.shape[0] != size:
            raise InvalidArgumentError(name, f"a diagonal needs {size} entries, got {tensor.shape[0]}")
        tensor = torch.diag(tensor)
    elif tuple(tensor.shape) != (size, size):
        raise InvalidArgumentError(name, f"expected a scalar, a vector of {size} or a {size}x{size} matrix, "
                                         f"got shape {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor).all()):
        raise InvalidArgumentError(name, "contains NaN or inf")
    return tensor


def check_covariance(matrix: Tensor, name: str, allow_singular: bool) -> Tensor:
    """The symmetrised ``matrix``; raises unless it is symmetric positive (semi-)definite."""
    scale = float(matrix.abs().max()) if matrix.numel() else 0.0
    tol = 1e-6 * max(scale, 1e-30) if matrix.dtype == torch.float32 else 1e-10 * max(scale, 1e-300)
    if float((matrix - matrix.mT).abs().max()) > tol:
        raise NotPositiveDefiniteError(name, "is not symmetric")
    matrix = 0.5 * (matrix + matrix.mT)
    if allow_singular:
        smallest = float(torch.linalg.eigvalsh(matrix).min())
        if smallest < -100 * tol:
            raise NotPositiveDefiniteError(name, f"is not positive semi-definite (eigenvalue {smallest:.3g})")
    else:
        _, info = torch.linalg.cholesky_ex(matrix)
        if int(info) != 0:
            raise NotPositiveDefiniteError(name, "is not positive definite")
    return matrix


class Covariance(nn.Module):
    """A ``size x size`` noise covariance given as a covariance or as a precision.

    Fixed: stored as buffers (the covariance and, if it is definite, its precision).
    Learnable: a Cholesky factor with a log-diagonal, positive definite by construction.
    ``allow_singular`` admits a positive semi-definite fixed covariance (e.g. process noise
    that drives only some state entries); its ``precision()`` then raises.
    """

    def __init__(self, name: str, size: int, cov: Any = None, precision: Any = None, *,
                 learnable: bool = False, dtype: torch.dtype | None = None,
                 allow_singular: bool = False) -> None:
        super().__init__()
        if (cov is None) == (precision is None):
            raise InvalidArgumentError(name, "give exactly one of the covariance and the precision")
        self.name = name
        self.size = size
        self.learnable = learnable
        dtype = resolve_dtype(dtype, cov, precision)
        if cov is not None:
            matrix = check_covariance(as_matrix(cov, size, f"{name}_cov", dtype), f"{name}_cov",
                                      allow_singular and not learnable)
        else:
            prec = check_covariance(as_matrix(precision, size, f"{name}_precision", dtype),
                                    f"{name}_precision", False)
            matrix = torch.cholesky_inverse(torch.linalg.cholesky(prec))
        chol, info = torch.linalg.cholesky_ex(matrix)
        self.definite = int(info) == 0
        if learnable:
            raw = torch.tril(chol, -1) + torch.diag(chol.diagonal().log())
            self.raw = nn.Parameter(raw)
        else:
            self.register_buffer("cov", matrix)
            self.register_buffer("prec", torch.cholesky_inverse(chol) if self.definite else None)

    def cholesky(self) -> Tensor:
        """Lower Cholesky factor of the covariance (definite covariances only)."""
        if self.learnable:
            return torch.tril(self.raw, -1) + torch.diag(self.raw.diagonal().exp())
        if not self.definite:
            raise NotPositiveDefiniteError(f"{self.name}_cov", "is singular: it has no Cholesky factor")
        return torch.linalg.cholesky(self.cov)

    def matrix(self) -> Tensor:
        """The covariance matrix."""
        if self.learnable:
            chol = self.cholesky()
            return chol @ chol.mT
        return self.cov

    def precision(self) -> Tensor:
        """The precision (inverse covariance); raises for a singular covariance."""
        if self.learnable:
            return torch.cholesky_inverse(self.cholesky())
        if self.prec is None:
            raise NotPositiveDefiniteError(f"{self.name}_cov", "is singular: it has no precision")
        return self.prec

    def extra_repr(self) -> str:
        return f"name={self.name!r}, size={self.size}, learnable={self.learnable}"
