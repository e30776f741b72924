"""The divergence guard: stop a relaxation or a weight step that is blowing up, before it lands.

Two checks, both on by default and both cheap (they read tensors already computed and cost one
host sync each):

- **Energy growth** (``il``, ``ipc``, and relaxation-only calls): relaxation descends the energy,
  so an energy that climbs above ``E_0 + (energy_growth - 1) |E_0|`` at any inference step
  (``E_0``: the energy at the start of the step) means the inference step size is too large.
  ``fpa`` and ``exact`` add the hidden errors to the energy by construction, so for them only the
  update bound applies.
- **Update bound** (every algorithm): a weight step that moves a parameter tensor by more than
  ``max_update * (1 + rms(p))`` in root-mean-square is refused (plain SGD: predicted from the
  gradient) or undone (other optimizers: parameters and optimizer state restored). ``ipc``,
  whose weight steps are interleaved with inference, checks the energy after each of them and
  the move over the whole step, and rolls the whole step back.

Both raise :class:`pcctrl.errors.DivergenceError` with the parameters as they were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import DivergenceError, InvalidArgumentError


@dataclass(frozen=True)
class DivergenceGuard:
    """Bounds on energy growth within one inference and on one weight step; ``None`` turns one off."""

    energy_growth: float | None = 1e3
    max_update: float | None = 10.0

    def __post_init__(self) -> None:
        if self.energy_growth is not None and not self.energy_growth > 1:
            raise InvalidArgumentError("energy_growth", f"must be > 1 (or None), got {self.energy_growth}")
        if self.max_update is not None and not self.max_update > 0:
            raise InvalidArgumentError("max_update", f"must be > 0 (or None), got {self.max_update}")


NO_GUARD = DivergenceGuard(energy_growth=None, max_update=None)


def growth_bound(totals: Tensor, growth: float) -> Tensor:
    """Per-step flags: the energy trace ``totals`` climbed past ``E_0 + (growth - 1) |E_0|``."""
    start = totals[0]
    return totals > start + (growth - 1.0) * start.abs()


def first_growth_step(totals: Tensor, growth: float) -> int | None:
    """The first inference step at which the energy grew past the bound, or ``None``."""
    flags = growth_bound(totals, growth)
    hits = flags.nonzero()
    return int(hits[0, 0]) if hits.numel() else None


def energy_divergence(step: int, start: float, reached: float, growth: float) -> DivergenceError:
    """The error raised when the energy grew past the bound."""
    return DivergenceError(
        f"the energy grew from {start:.4g} to {reached:.4g} by inference step {step} "
        f"(more than {growth:g} times its start): relaxation is diverging. Lower the inference "
        "step size (x_lr). Parameters were left unchanged."
    )


def _sgd_lr(optimizer: torch.optim.Optimizer) -> list[float] | None:
    """Learning rates of a plain SGD (no momentum, no weight decay), whose step is ``-lr * grad``."""
    if type(optimizer) is not torch.optim.SGD:
        return None
    rates = []
    for group in optimizer.param_groups:
        if group.get("momentum", 0) or group.get("weight_decay", 0) or group.get("maximize", False):
            return None
        lr = group["lr"]
        rates.append(float(lr))
    return rates


def l2_norms(tensors: list[Tensor]) -> list[float]:
    """L2 norms of many tensors with one host sync."""
    if not tensors:
        return []
    norms = torch._foreach_norm(tensors)
    if len({(n.dtype, n.device) for n in norms}) == 1:
        return torch.stack(norms).tolist()
    return [float(n) for n in norms]


def _violation(moves: Sequence[Tensor], params: Sequence[Tensor], bound: float,
               rates: Sequence[float] | None = None,
               move_norms: Sequence[float] | None = None) -> tuple[int, float] | None:
    """The first parameter whose RMS move (``rates[i] * moves[i]`` if given) exceeds
    ``bound * (1 + rms(p))``, with that RMS move; ``None`` if none does.

    ``move_norms`` are the moves' L2 norms if already known. A parameter's own norm is read only
    when its move exceeds ``bound`` alone (``rms(p) >= 0``), which in a healthy step none does.
    """
    norms = l2_norms(list(moves)) if move_norms is None else list(move_norms)
    moved = [norm * (rates[i] if rates is not None else 1.0) for i, norm in enumerate(norms)]
    roots = [math.sqrt(param.numel()) for param in params]
    suspects = [i for i in range(len(params)) if not moved[i] <= bound * roots[i]]
    if not suspects:
        return None
    for index, norm in zip(suspects, l2_norms([params[i] for i in suspects])):
        if not moved[index] <= bound * (roots[index] + norm):
            return index, moved[index] / roots[index]
    return None


def update_divergence(param: Tensor, index: int, moved: float, bound: float,
                      owner: nn.Module | None) -> DivergenceError:
    """The error raised for a weight step that moved ``param`` by ``moved`` (RMS)."""
    names = parameter_names(owner) if owner is not None else {}
    name = names.get(id(param), f"parameter {index} of shape {tuple(param.shape)}")
    return DivergenceError(
        f"the weight step would move {name} by {moved:.4g} (root-mean-square), more than "
        f"max_update={bound:g} times (1 + its RMS): learning is diverging. Lower the "
        "learning rate. Parameters and optimizer state were left unchanged."
    )


def check_moves(params: Sequence[Tensor], before: Sequence[Tensor], bound: float | None,
                owner: nn.Module | None = None) -> None:
    """Raise ``DivergenceError`` if some parameter moved from ``before`` by more than the bound
    (the caller restores the parameters)."""
    if bound is None or not params:
        return
    with torch.no_grad():
        bad = _violation(torch._foreach_sub([p.detach() for p in params], list(before)), list(before), bound)
    if bad is not None:
        raise update_divergence(params[bad[0]], bad[0], bad[1], bound, owner)


def guarded_step(
    optimizer: torch.optim.Optimizer,
    max_update: float | None,
    owner: nn.Module | None = None,
    grad_norms: dict[int, float] | None = None,
) -> None:
    """``optimizer.step()``; a step that moves a parameter by more than the bound is undone and raises.

    For plain SGD the step is predicted from the gradients and refused before it is taken; for
    any other optimizer the parameters and the optimizer's state are saved, the step is taken,
    and both are restored if it went too far. ``owner`` names the parameters in the message;
    ``grad_norms`` (``id(param) -> |grad|``, e.g. from ``write_gradients``) saves reading the
    gradients again.
    """
    if max_update is None:
        optimizer.step()
        return
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]

    def fail(index: int, moved: float) -> DivergenceError:
        return update_divergence(params[index], index, moved, max_update, owner)  # type: ignore[arg-type]

    rates = _sgd_lr(optimizer)
    if rates is not None:
        lr_of = {id(p): lr for group, lr in zip(optimizer.param_groups, rates) for p in group["params"]}
        known = None
        if grad_norms is not None and all(id(p) in grad_norms for p in params):
            known = [grad_norms[id(p)] for p in params]
        with torch.no_grad():
            bad = _violation([p.grad for p in params], params, max_update,
                             [lr_of[id(p)] for p in params], known)
        if bad is not None:
            raise fail(*bad)
        optimizer.step()
        return
    with torch.no_grad():
        saved = [p.detach().clone() for p in params]
    state = {
        id(p): {k: v.clone() if isinstance(v, Tensor) else v for k, v in optimizer.state[p].items()}
        for p in params if p in optimizer.state
    }
    optimizer.step()
    with torch.no_grad():
        bad = _violation(torch._foreach_sub([p.detach() for p in params], saved), saved, max_update)
        if bad is None:
            return
        for param, before in zip(params, saved):
            param.copy_(before)
    for param in params:
        if id(param) in state:
            optimizer.state[param] = state[id(param)]
        else:
            optimizer.state.pop(param, None)
    raise fail(*bad)


def parameter_names(module: nn.Module) -> dict[int, str]:
    """``id(parameter) -> name`` for error messages."""
    return {id(p): name for name, p in module.named_parameters()}
