"""Local learning: the weight step of each PC algorithm, written into ``.grad``."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import InvalidArgumentError, NonFiniteError
from .energy_graph import EnergyGraph, State
from .guard import l2_norms, check_moves, guarded_step
from .inference import (
    Relaxation,
    Settings,
    add_gradients,
    check_trace,
    local_backward,
    local_forward,
    precision_gradients,
    relax,
)

Algorithm = Literal["il", "fpa", "exact", "ipc"]
ALGORITHMS: tuple[str, ...] = ("il", "fpa", "exact", "ipc")


def check_algorithm(algorithm: str) -> None:
    """Raise a ``ValueError`` that lists the algorithms if ``algorithm`` is not one of them."""
    if algorithm not in ALGORITHMS:
        raise InvalidArgumentError("algorithm", f"must be one of {list(ALGORITHMS)}, got {algorithm!r}")


@dataclass(frozen=True)
class StepRecord:
    """What one PC learning step did: the batch-mean energy per inference step and the count."""

    algorithm: str
    energy: list[float]
    steps: int
    converged: bool


def learnable_parameters(graph: EnergyGraph) -> list[nn.Parameter]:
    """Parameters that the PC weight step updates (predictions and learnable precisions)."""
    return [p for p in graph.parameters() if p.requires_grad]


def _weight_gradients(
    graph: EnergyGraph, relaxation: Relaxation, params: list[nn.Parameter]
) -> list[Tensor | None]:
    """Gradient of the batch-mean energy over the parameters, node values held fixed.

    Only nodes with a non-zero error send their signal back through their own prediction.
    """
    state = relaxation.state
    _, grads = local_backward(graph, relaxation.local_graphs, relaxation.signals, set(), params, retain=False)
    grads = [None if g is None else g * (-1.0 / state.batch) for g in grads]
    names = graph.energy_nodes(state)
    return add_gradients(grads, precision_gradients(graph, state, relaxation.mus, names, params))


def _exact_sweep(
    graph: EnergyGraph, state: State, params: list[nn.Parameter]
) -> tuple[list[Tensor | None], Relaxation]:
    """Z-IL: errors settle one level per inference step; each level's weights update then.

    At step ``l`` the nodes ``l`` edges from the output receive their final error (the
    fixed-prediction equilibrium with unit step) and their prediction's weights take their
    update from it, in one backward pass over that level's local graphs.
    """
    local = local_forward(graph, state)
    mus = {n: mu.detach() for n, (_, mu) in local.items()}
    names = graph.energy_nodes(state)
    inferred = set(state.inferred())
    levels = graph.levels
    feedback: dict[str, Tensor] = {}
    totals: list[Tensor | None] = [None] * len(params)
    start: list[Tensor] = []
    end: list[Tensor] = []
    for level in range(graph.depth + 1):
        group = [n for n in names if levels[n] == level]
        signals: dict[str, Tensor] = {}
        with torch.no_grad():
            for name in group:
                own, energy = graph.signal_and_energy(name, state.values[name], mus[name], state)
                start.append(energy)
                if name not in inferred:
                    signals[name] = own
                    end.append(start[-1])
                    continue
                settled = feedback.pop(name, None)
                if settled is None:
                    end.append(start[-1])
                    continue
                mask = state.infer_mask[name]
                if mask is not None and graph.precisions[name].kind == "full":
                    raise InvalidArgumentError(
                        f"node {graph.describe(name)}",
                        "'exact' with missing entries needs a "
                        "scalar or diagonal precision"
                    )
                signal = settled if mask is None else torch.where(mask, settled, own)
                value = mus[name] + graph.precisions[name].solve(signal)
                state.values[name] = value if mask is None else torch.where(mask, value, state.values[name])
                signals[name] = signal
                end.append(graph.signal_and_energy(name, state.values[name], mus[name], state)[1])
        if not signals:
            continue
        parents, grads = local_backward(graph, local, signals, inferred, params, retain=False)
        for owner, grad in parents.items():
            feedback[owner] = feedback[owner] + grad if owner in feedback else grad
        totals = add_gradients(totals, [None if g is None else g * (-1.0 / state.batch) for g in grads])
    if start:
        check_trace(graph, torch.stack([torch.stack(start), torch.stack(end)]), names)
    totals = add_gradients(totals, precision_gradients(graph, state, mus, names, params))
    graph.fill_sinks(state, mus)
    trace = [torch.stack(start).sum() / state.batch, torch.stack(end).sum() / state.batch] if start else []
    return totals, Relaxation(state, mus, trace, graph.depth, True, local)


def pc_gradients(
    graph: EnergyGraph, state: State, settings: Settings
) -> tuple[list[Tensor | None], Relaxation]:
    """The PC update of every learnable parameter (as a gradient to descend) and the inference.

    Touches neither ``.grad`` nor the parameters. Not defined for ``"ipc"``, whose weight steps
    are interleaved with inference.
    """
    check_algorithm(settings.algorithm)
    params = learnable_parameters(graph)
    if settings.algorithm in ("fpa", "exact") and not graph.is_acyclic:
        raise InvalidArgumentError(
            "algorithm", f"{settings.algorithm!r} needs an acyclic graph; use 'il' or 'ipc' on graphs with cycles"
        )
    if settings.algorithm == "exact":
        return _exact_sweep(graph, state, params)
    if settings.algorithm == "ipc":
        raise InvalidArgumentError("algorithm", "'ipc' updates weights during inference; it has no single PC update")
    relaxation = relax(graph, state, settings)
    return _weight_gradients(graph, relaxation, params), relaxation


def write_gradients(params: list[nn.Parameter], grads: list[Tensor | None]) -> dict[int, float]:
    """Write a PC update into ``.grad`` and return ``id(param) -> |update|`` (L2, one host sync).

    An update that is not finite raises and writes nothing (a finite one whose norm overflows
    is written, with norm ``inf``).
    """
    present = [(id(p), g) for p, g in zip(params, grads) if g is not None]
    norms = dict(zip((key for key, _ in present), l2_norms([g for _, g in present])))
    overflowed = [g for key, g in present if not math.isfinite(norms[key])]
    if overflowed and not all(bool(torch.isfinite(g).all()) for g in overflowed):
        raise NonFiniteError(
            "the PC update is not finite; parameters were left unchanged. "
            "Lower the inference step size or check the data."
        )
    for param, grad in zip(params, grads):
        param.grad = torch.zeros_like(param) if grad is None else (grad.detach() if grad.requires_grad else grad)
        norms.setdefault(id(param), 0.0)
    return norms


def apply_update(
    params: list[nn.Parameter],
    grads: list[Tensor | None],
    settings: Settings,
    optimizer: torch.optim.Optimizer | None,
    owner: nn.Module | None = None,
) -> None:
    """Write the update into ``.grad`` and take the optimizer's step under the update bound."""
    norms = write_gradients(params, grads)
    if optimizer is not None:
        guarded_step(optimizer, settings.guard.max_update, owner, norms)


def train_step(
    graph: EnergyGraph,
    state: State,
    settings: Settings,
    optimizer: torch.optim.Optimizer | None,
    owner: nn.Module | None = None,
) -> StepRecord:
    """One PC learning step: relax, then write the local update into ``.grad`` and step.

    With ``optimizer=None`` the update is only written into ``.grad``. If inference fails
    (non-finite or diverging energy) or the step would move a parameter past the guard's bound,
    an exception is raised and the parameters are left as they were.
    """
    check_algorithm(settings.algorithm)
    if settings.algorithm == "ipc":
        return _ipc_step(graph, state, settings, optimizer, owner)
    params = learnable_parameters(graph)
    grads, relaxation = pc_gradients(graph, state, settings)
    apply_update(params, grads, settings, optimizer, owner)
    return StepRecord(settings.algorithm, relaxation.energy, relaxation.steps, relaxation.converged)


def _ipc_step(
    graph: EnergyGraph,
    state: State,
    settings: Settings,
    optimizer: torch.optim.Optimizer | None,
    owner: nn.Module | None = None,
) -> StepRecord:
    """Incremental PC: a weight step after every inference step; rolled back on failure."""
    if optimizer is None:
        raise InvalidArgumentError(
            "optimizer", "algorithm 'ipc' takes a weight step at every inference step: pass an optimizer")
    params = learnable_parameters(graph)
    saved_params = [p.detach().clone() for p in params]
    saved_optimizer = copy.deepcopy(optimizer.state_dict())

    def weight_step(grads: list[Tensor | None]) -> None:
        write_gradients(params, [None if g is None else g / state.batch for g in grads])
        optimizer.step()

    try:
        relaxation = relax(graph, state, settings, weight_hook=weight_step, params=params)
        check_moves(params, saved_params, settings.guard.max_update, owner)
    except (FloatingPointError, RuntimeError):
        with torch.no_grad():
            for param, saved in zip(params, saved_params):
                param.copy_(saved)
        optimizer.load_state_dict(saved_optimizer)
        raise
    return StepRecord("ipc", relaxation.energy, relaxation.steps, relaxation.converged)
