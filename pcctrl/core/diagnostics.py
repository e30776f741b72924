"""Diagnostics: how close a PC update is to backprop's gradient."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from .network import PCNetwork, _check_loss


@dataclass(frozen=True)
class Alignment:
    """One parameter's PC update against autograd's gradient of the same loss."""

    cosine: float
    relative_error: float


def output_loss(prediction: Tensor, target: Tensor, loss: str) -> Tensor:
    """The batch-mean loss PC's output energy stands for: ``1/2 |y - mu|^2`` or cross-entropy."""
    if _check_loss(loss) == "ce":
        if target.is_floating_point():
            return -(target * torch.log_softmax(prediction, dim=-1)).sum(-1).mean()
        return F.cross_entropy(prediction, target)
    return 0.5 * (target - prediction).square().reshape(prediction.shape[0], -1).sum(-1).mean()


def bp_alignment(
    net: PCNetwork,
    x: Tensor | Sequence[Tensor],
    y: Tensor,
    loss: str = "mse",
    algorithm: str | None = None,
) -> dict[str, Alignment]:
    """Per-parameter cosine similarity and relative error ``|pc - bp| / |bp|`` of the PC update.

    The reference is autograd's gradient of ``output_loss(net(x), y)``. Neither the
    parameters nor their ``.grad`` are changed.
    """
    pc = net.pc_gradients(x, y, loss=loss, algorithm=algorithm)
    inputs = (x,) if isinstance(x, Tensor) else tuple(x)
    params = [p for _, p in net.named_parameters() if p.requires_grad]
    names = [n for n, p in net.named_parameters() if p.requires_grad]
    with torch.enable_grad():
        reference = torch.autograd.grad(
            output_loss(net(*inputs), y, loss), params, allow_unused=True
        )
    result: dict[str, Alignment] = {}
    for name, param, bp in zip(names, params, reference):
        bp = torch.zeros_like(param) if bp is None else bp
        got = pc[name].reshape(-1)
        want = bp.reshape(-1)
        norm = float(want.norm())
        diff = float((got - want).norm())
        denominator = float(got.norm()) * norm
        cosine = float(got @ want) / denominator if denominator > 0 else float(diff == 0.0)
        result[name] = Alignment(cosine, diff / norm if norm > 0 else diff)
    return result


def energy_trace(net: PCNetwork, x: Tensor | Sequence[Tensor], y: Tensor | None = None, loss: str = "mse") -> list[float]:
    """Batch-mean energy at each inference step with the input (and target) clamped."""
    return net.relax(x, y, loss).energy
