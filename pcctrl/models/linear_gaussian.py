"""``LinearGaussianModel``: ``s_t = A s_{t-1} + B a_{t-1} + w``, ``o_t = C s_t + v``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .covariance import resolve_dtype
from ..errors import InvalidArgumentError
from .state_space import NumpyKernel, StateSpaceModel


class _LinearKernel:
    """``A s + B a`` and ``C s`` on float64 numpy arrays (matrices copied when the kernel is made)."""

    def __init__(self, A: Tensor, B: Tensor, C: Tensor) -> None:
        self.A, self.B, self.C = (m.detach().cpu().double().numpy().copy() for m in (A, B, C))
        self.has_action = self.B.shape[1] > 0

    def transition(self, s: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.A @ s
        return (out + self.B @ a if self.has_action else out), self.A

    def observation(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.C @ s, self.C

    def observe(self, s: np.ndarray) -> np.ndarray:
        return self.C @ s


def _matrix(value: Any, name: str, dtype: torch.dtype, shape: tuple[int | None, int | None]) -> Tensor:
    try:
        tensor = value.detach() if isinstance(value, Tensor) else torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"cannot be read as a tensor ({exc})") from exc
    tensor = tensor.to(dtype).clone()
    if tensor.ndim != 2 or any(want is not None and got != want for got, want in zip(tensor.shape, shape)):
        want = "x".join("?" if w is None else str(w) for w in shape)
        raise InvalidArgumentError(name, f"expected a {want} matrix, got shape {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor).all()):
        raise InvalidArgumentError(name, "contains NaN or inf")
    return tensor


class LinearGaussianModel(StateSpaceModel):
    """The linear-Gaussian state-space model; the PC filter's posterior on it is the Kalman filter's.

    ``A``: ``(n, n)``, ``B``: ``(n, m)`` or ``None`` (no action), ``C``: ``(p, n)``, ``Q``:
    process covariance (``n x n``, positive semi-definite), ``R``: observation covariance
    (``p x p``, positive definite); ``Q``/``R`` may also be a scalar or a diagonal vector.
    ``dtype`` defaults to that of the given arrays. ``learnable=True`` makes ``A, B, C`` and
    the noise covariances parameters.
    """

    is_linear = True

    def __init__(self, A: Any, B: Any, C: Any, Q: Any, R: Any, *, learnable: bool = False,
                 dtype: torch.dtype | None = None) -> None:
        dtype = resolve_dtype(dtype, A, B, C, Q, R)
        A_ = _matrix(A, "A", dtype, (None, None))
        n = A_.shape[0]
        if A_.shape[1] != n:
            raise InvalidArgumentError("A", f"must be square, got shape {tuple(A_.shape)}")
        B_ = torch.zeros(n, 0, dtype=dtype) if B is None else _matrix(B, "B", dtype, (n, None))
        C_ = _matrix(C, "C", dtype, (None, n))
        nn.Module.__init__(self)  # the matrices must exist before the model probes f and g
        for name, value in (("A", A_), ("B", B_), ("C", C_)):
            if learnable:
                setattr(self, name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)
        self._init_model(self._linear_transition, self._linear_observation, n, C_.shape[0], B_.shape[1],
                         Q, None, R, None, learnable, dtype)

    def _linear_transition(self, s: Tensor, a: Tensor) -> Tensor:
        return s @ self.A.mT + a @ self.B.mT

    def _linear_observation(self, s: Tensor) -> Tensor:
        return s @ self.C.mT

    def linearize_transition(self, s: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        """``(A s + B a, A)`` (``A`` broadcast over the batch)."""
        return self._linear_transition(s, a), self.A.expand(s.shape[0], -1, -1)

    def linearize_observation(self, s: Tensor) -> tuple[Tensor, Tensor]:
        """``(C s, C)`` (``C`` broadcast over the batch)."""
        return self._linear_observation(s), self.C.expand(s.shape[0], -1, -1)

    def numpy_kernel(self) -> NumpyKernel | None:
        """``A``, ``B``, ``C`` as float64 numpy matrices (a snapshot: the filter rebuilds it for
        learnable models; ``None`` for subclasses)."""
        return _LinearKernel(self.A, self.B, self.C) if type(self) is LinearGaussianModel else None

    def to_checkpoint(self) -> dict[str, Any]:
        """Matrices, settings and every tensor (``state_dict``) as checkpoint data."""
        with torch.no_grad():
            return {"A": self.A.detach().clone(), "B": self.B.detach().clone(), "C": self.C.detach().clone(),
                    "Q": self.process_cov().detach().clone(), "R": self.obs_cov().detach().clone(),
                    "learnable": self.obs_noise.learnable, "dtype": self.dtype,
                    "state_dict": {k: v.detach().clone() for k, v in self.state_dict().items()}}

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> "LinearGaussianModel":
        """Rebuild a :meth:`to_checkpoint` model; its tensors are restored bit for bit."""
        B = data["B"] if data["B"].shape[1] > 0 else None
        model = cls(data["A"], B, data["C"], data["Q"], data["R"], learnable=bool(data["learnable"]),
                    dtype=data["dtype"])
        model.load_state_dict(data["state_dict"], strict=True)
        return model
