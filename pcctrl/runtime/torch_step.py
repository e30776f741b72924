"""Pure torch steps of the reflex and filter + reflex controllers, for export (fixed iterations).

Each module is a function of ``(inputs, state) -> (action, new state)`` with every constant a
buffer, so ``torch.export`` programs and ONNX graphs carry no Python state. Non-finite readings
are missing.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..control.reflex import ReflexController
from ..estimation.pc_filter import PCFilter
from ..errors import InvalidArgumentError


def _buffer(module: nn.Module, name: str, value: np.ndarray | float, dtype: torch.dtype) -> None:
    # Contiguous: torch.export's archive writer warns on (and mis-groups) strided constants.
    module.register_buffer(name, torch.tensor(np.ascontiguousarray(value, dtype=np.float64), dtype=dtype))


class ReflexStep(nn.Module):
    """``forward(y, mu, action, prev) -> (action, mu, prev)``: one :class:`ReflexController` tick."""

    def __init__(self, reflex: ReflexController, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.sensed, self.dim, self.size = reflex.obs_size, reflex.dim, reflex.order * reflex.dim
        self.iters = reflex.iters if reflex.perception_lr > 0 else 0
        # Python floats would become float32 constants in ONNX: keep them as buffers of the step's dtype.
        _buffer(self, "lr", reflex.perception_lr, dtype)
        _buffer(self, "inv_dt", 1.0 / reflex.dt, dtype)
        for name in ("motion", "prior_hessian", "prior_offset", "pi_z_flat", "action_matrix", "max_rate",
                     "action_low", "action_high"):
            _buffer(self, name, getattr(reflex, name), dtype)
        _buffer(self, "nan", np.nan, dtype)
        _buffer(self, "zero", 0.0, dtype)

    def forward(self, y: Tensor, mu: Tensor, action: Tensor, prev: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        y = torch.where(torch.isfinite(y), y, self.nan)
        parts = [y]
        last = y
        n = self.dim
        for k in range(self.sensed, self.size, n):
            last = (last[-n:] - prev[k - n:k]) * self.inv_dt
            parts.append(last)
        full = torch.cat(parts) if len(parts) > 1 else y
        ok = torch.isfinite(full)
        y0 = torch.where(ok, full, self.zero)
        precision = self.pi_z_flat * ok.to(y0.dtype)
        mu = self.motion @ mu
        for _ in range(self.iters):
            grad = self.prior_hessian @ mu - self.prior_offset - precision * (y0 - mu)
            mu = mu - self.lr * grad
        eps = (y0 - mu) * ok.to(y0.dtype)
        a = action - self.action_matrix @ eps
        a = torch.minimum(torch.maximum(a, action - self.max_rate), action + self.max_rate)
        a = torch.minimum(torch.maximum(a, self.action_low), self.action_high)
        return a, mu, full


class FilterReflexStep(nn.Module):
    """``forward(obs, mean, cov, mu, action, prev, predict) -> (action, mean, cov, mu, prev)``.

    The PC filter's Laplace step on a linear-Gaussian model with diagonal ``R`` (one Gauss-Newton
    step is the minimum, i.e. the Kalman update, taken here one reading at a time so no matrix is
    inverted and a missing reading simply drops out), then a :class:`ReflexStep` on the belief
    entries ``sensed``. ``predict`` (shape ``(1,)``) ``= 0`` skips the transition (the first reading after a reset).
    """

    def __init__(self, filt: PCFilter, reflex: ReflexController, sensed: np.ndarray,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        model = filt.model
        if not getattr(model, "is_linear", False) or filt.mode != "laplace":
            raise InvalidArgumentError("controller", "export needs a PCFilter in mode='laplace' on a "
                                                     "LinearGaussianModel")
        R = model.obs_cov().detach().double().numpy()
        if np.any(R - np.diag(np.diag(R)) != 0):
            raise InvalidArgumentError("controller", "export needs a diagonal observation covariance R")
        _buffer(self, "A", model.A.detach().double().numpy(), dtype)
        _buffer(self, "B", model.B.detach().double().numpy(), dtype)
        _buffer(self, "C", model.C.detach().double().numpy(), dtype)
        _buffer(self, "Q", model.process_cov().detach().double().numpy(), dtype)
        _buffer(self, "r", np.diag(R), dtype)
        self.register_buffer("sensed", torch.tensor(np.ascontiguousarray(sensed), dtype=torch.int64))
        self.obs_dim = model.obs_dim
        self.reflex = ReflexStep(reflex, dtype)

    def forward(self, obs: Tensor, mean: Tensor, cov: Tensor, mu: Tensor, action: Tensor, prev: Tensor,
                predict: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        keep = 1.0 - predict
        mean = predict * (self.A @ mean + self.B @ action) + keep * mean
        cov = predict * (self.A @ cov @ self.A.T + self.Q) + keep * cov
        ok = torch.isfinite(obs)
        o = torch.where(ok, obs, torch.zeros_like(obs))
        w = ok.to(obs.dtype)
        # (1,)-shaped slices, not 0-d scalars: ONNX export would compute 0-d values in float32.
        for j in range(self.obs_dim):
            c = self.C[j:j + 1]
            pc = cov @ c.T
            gain = pc * (w[j:j + 1] / (c @ pc + self.r[j:j + 1]))
            mean = mean + (gain * (o[j:j + 1] - c @ mean)).reshape(-1)
            cov = cov - gain @ pc.T
        cov = 0.5 * (cov + cov.T)
        a, mu, prev = self.reflex(mean[self.sensed], mu, action, prev)
        return a, mean, cov, mu, prev
