"""Inference: relaxation of the free value nodes of an ``EnergyGraph`` down its energy.

Each prediction keeps its own small autograd graph, started at detached copies of its parents'
values ("local graphs"). A relaxation step sends each node's weighted error back through its
own local graph only, so every update is local. Predictions are recomputed only for nodes whose
parents moved, and errors that are exactly zero (free nodes still at their feed-forward value)
are skipped: from a feed-forward start the error reaches one more layer per step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import NonFiniteEnergyError
from .energy_graph import EnergyGraph, State
from .guard import DivergenceGuard, energy_divergence, first_growth_step

NodeOptimizer = Callable[[Sequence[Tensor]], torch.optim.Optimizer]
"""Builds a torch optimizer over the free node tensors, e.g. ``lambda xs: torch.optim.Adam(xs, lr=0.05)``."""

LocalGraphs = dict[str, tuple[tuple[Tensor, ...], Tensor]]
WeightHook = Callable[[Sequence[Tensor | None]], None]


@dataclass(frozen=True)
class Settings:
    """How one inference (and learning step) runs: algorithm, steps, step size, stopping, guard."""

    algorithm: str
    steps: int
    x_lr: float
    tol: float | None = None
    node_optimizer: NodeOptimizer | None = None
    guard: DivergenceGuard = DivergenceGuard()

    @property
    def fixed_predictions(self) -> bool:
        """Whether predictions stay at their feed-forward values (``fpa`` and ``exact``)."""
        return self.algorithm in ("fpa", "exact")

    @property
    def watches_growth(self) -> bool:
        """Whether the energy-growth guard applies: relaxation that descends the energy."""
        return self.guard.energy_growth is not None and not self.fixed_predictions


@dataclass
class Relaxation:
    """The outcome of one inference: final values, predictions and the energy per step.

    ``energy`` holds the batch-mean energy before each step and after the last one.
    ``local_graphs`` keeps each prediction with the detached parent leaves it was computed from;
    ``signals`` the final weighted errors ``-dE/dmu`` of the nodes whose error is not zero.
    """

    state: State
    mus: dict[str, Tensor]
    energy_steps: list[Tensor]
    steps: int
    converged: bool
    local_graphs: LocalGraphs = field(default_factory=dict)
    signals: dict[str, Tensor] = field(default_factory=dict)

    @property
    def values(self) -> dict[str, Tensor]:
        """Node values after relaxation."""
        return self.state.values

    @property
    def energy(self) -> list[float]:
        """Batch-mean energy trace as Python floats."""
        return torch.stack(self.energy_steps).tolist() if self.energy_steps else []


def check_trace(graph: EnergyGraph, table: Tensor, names: list[str], growth: float | None = None) -> None:
    """Raise on the first bad inference step of a per-step, per-node energy ``table``.

    ``NonFiniteEnergyError`` (naming the nodes) at a step whose energy is NaN/inf;
    ``DivergenceError`` at a step where the total energy grew past ``growth`` times its start
    (see ``guard``), whichever comes first. One host sync when all is well.
    """
    if table.numel() == 0 or not names:
        return
    totals = table.sum(1)
    finite = torch.isfinite(totals.sum())
    if growth is None:
        if bool(finite):
            return
    else:
        start = totals[0]
        grown = (totals > start + (growth - 1.0) * start.abs()).any()
        if bool(finite & ~grown):
            return
    good = torch.isfinite(table).all(dim=1)
    bad_step = int((~good).nonzero()[0, 0]) if not bool(good.all()) else None
    grew = first_growth_step(totals, growth) if growth is not None else None
    if grew is not None and (bad_step is None or grew < bad_step):
        raise energy_divergence(grew, float(totals[0]), float(totals[grew]), growth)  # type: ignore[arg-type]
    assert bad_step is not None
    bad = [names[i] for i in (~torch.isfinite(table[bad_step])).nonzero().flatten().tolist()]
    raise NonFiniteEnergyError([graph.describe(n) for n in bad], bad_step)


def _masked(grad: Tensor, mask: Tensor | None) -> Tensor:
    return grad if mask is None else grad * mask


def build_local(graph: EnergyGraph, state: State, name: str, inferred: set[str]) -> tuple[tuple[Tensor, ...], Tensor]:
    """The prediction of ``name`` from detached copies of its parents (grad where inferred)."""
    spec = graph.specs[name]
    leaves = tuple(state.values[p].detach().requires_grad_(p in inferred) for p in spec.parents)
    with torch.enable_grad():
        mu = spec.predict(*leaves)  # type: ignore[misc]
    return leaves, mu


def local_forward(graph: EnergyGraph, state: State) -> LocalGraphs:
    """Start values and local graphs: a feed-forward pass on acyclic graphs, a sweep otherwise.

    On an acyclic graph every free node starts exactly at its prediction (zero error).
    """
    inferred = set(state.inferred())
    local: LocalGraphs = {}
    if not graph.is_acyclic:
        graph.initialise(state)
        for name in graph.predicted():
            local[name] = build_local(graph, state, name, inferred)
            graph.check_prediction(name, local[name][1], state.values[name])
        return local
    for name in graph.topo_order:
        spec = graph.specs[name]
        if spec.predict is None:
            if name not in state.values:
                if spec.shape is None or not graph.children[name]:
                    raise ValueError(f"node {graph.describe(name)} has no prediction and must be clamped")
                state.values[name] = torch.zeros((state.batch, *spec.shape), dtype=state.dtype, device=state.device)
            continue
        local[name] = build_local(graph, state, name, inferred)
        mu = local[name][1].detach()
        if name not in state.clamped:
            state.values[name] = mu
        else:
            graph.check_prediction(name, mu, state.values[name])
            if name in state.infer_mask:
                state.values[name] = torch.where(state.infer_mask[name], mu, state.values[name])
    return local


def local_backward(
    graph: EnergyGraph,
    local: LocalGraphs,
    signals: dict[str, Tensor],
    targets: set[str],
    params: Sequence[Tensor],
    retain: bool,
) -> tuple[dict[str, Tensor], list[Tensor | None]]:
    """One backward pass through the local graphs of the signalling nodes.

    Returns, per target node, the sum over its children ``c`` of ``J_c^T signal_c``, and for
    each parameter the sum over nodes of ``(dmu/dtheta)^T signal`` (the negative gradient).
    """
    outputs, grad_outputs, leaves, owners = [], [], [], []
    for child, signal in signals.items():
        parent_leaves, mu = local[child]
        if not mu.requires_grad:
            continue
        wanted = [(p, leaf) for p, leaf in zip(graph.specs[child].parents, parent_leaves)
                  if p in targets and leaf.requires_grad]
        if not wanted and not params:
            continue
        outputs.append(mu)
        grad_outputs.append(signal)
        for p, leaf in wanted:
            leaves.append(leaf)
            owners.append(p)
    feedback: dict[str, Tensor] = {}
    if not outputs or not (leaves or params):
        return feedback, [None] * len(params)
    grads = torch.autograd.grad(
        outputs, leaves + list(params), grad_outputs, retain_graph=retain, allow_unused=True
    )
    for owner, grad in zip(owners, grads[: len(leaves)]):
        if grad is not None:
            feedback[owner] = feedback[owner] + grad if owner in feedback else grad
    return feedback, list(grads[len(leaves):])


def relax(
    graph: EnergyGraph,
    state: State,
    settings: Settings,
    *,
    weight_hook: WeightHook | None = None,
    params: Sequence[Tensor] = (),
) -> Relaxation:
    """Relax the inferred nodes by gradient steps on the energy (or a torch optimizer).

    ``settings.fixed_predictions`` (``fpa``/``exact``) holds every prediction at its starting
    (feed-forward) value. ``weight_hook`` (incremental PC) receives, at every step, the energy
    gradient of ``params`` (batch mean) taken at the same point as the node gradient, and may
    update them; all predictions are then recomputed. The guard in ``settings`` stops a
    relaxation whose energy grows (``DivergenceError``) or turns non-finite.
    """
    steps, x_lr, tol = settings.steps, settings.x_lr, settings.tol
    node_optimizer, fixed_predictions = settings.node_optimizer, settings.fixed_predictions
    growth = settings.guard.energy_growth if settings.watches_growth else None
    if fixed_predictions and not graph.is_acyclic:
        raise ValueError("fixed predictions need an acyclic graph")
    local = local_forward(graph, state)
    names = graph.energy_nodes(state)
    inferred = state.inferred()
    inferred_set = set(inferred)
    active = set(names) if not graph.is_acyclic else {n for n in names if n in state.clamped}
    children = graph.children
    optimizer = None
    if node_optimizer is not None and inferred:
        for name in inferred:
            state.values[name] = state.values[name].detach().requires_grad_(True)
        optimizer = node_optimizer([state.values[n] for n in inferred])
    zero = torch.zeros((), dtype=state.dtype, device=state.device)
    # Unit-precision Gaussian nodes: signal = eps and energy = 1/2 eps.eps, halved once at the end.
    plain = {n for n in names if state.kinds[n] == "gaussian" and graph.precisions[n].is_identity
             and n not in state.observed}
    halves = torch.tensor([0.5 if n in plain else 1.0 for n in names], dtype=zero.dtype, device=zero.device)
    moved: set[str] = set()
    per_node: list[Tensor] = []
    signals: dict[str, Tensor] = {}
    previous: float | None = None
    converged = False
    done = 0
    for step in range(steps + 1):
        if moved and not fixed_predictions:
            for name in {c for m in moved for c in children[m]}:
                local[name] = build_local(graph, state, name, inferred_set)
                active.add(name)
        moved = set()
        with torch.no_grad():
            signals, energies = {}, []
            for name in names:
                if name not in active:
                    energies.append(zero)
                elif name in plain:
                    eps = state.values[name] - local[name][1].detach()
                    flat = eps.reshape(-1)
                    signals[name] = eps
                    energies.append(torch.dot(flat, flat))
                else:
                    signal, energy = graph.signal_and_energy(name, state.values[name], local[name][1].detach(), state)
                    signals[name] = signal
                    energies.append(energy)
            table = torch.stack(energies) if energies else zero.reshape(1)
        per_node.append(table)
        if tol is not None:
            current = float((table * halves).sum()) if names else 0.0
            if previous is not None and abs(previous - current) <= tol * max(abs(previous), 1e-12):
                converged = True
                break
            previous = current
        if step == steps or not (inferred or weight_hook):
            break
        feedback, param_grads = local_backward(
            graph, local, signals, inferred_set, params if weight_hook else (), retain=True
        )
        if weight_hook is not None:
            check_trace(graph, _weighted(per_node, halves), names, growth)
            grads = [None if g is None else g * (-1.0 / state.batch) for g in param_grads]
            mus_now = {n: mu.detach() for n, (_, mu) in local.items()}
            weight_hook(add_gradients(grads, precision_gradients(graph, state, mus_now, names, params)))
            moved = set(graph.specs)
        with torch.no_grad():
            for name in inferred:
                if name in signals:
                    grad = signals[name] - feedback[name] if name in feedback else signals[name]
                elif name in feedback:
                    grad = feedback[name].neg()
                else:
                    continue
                grad = _masked(grad, state.infer_mask[name])
                if optimizer is None:
                    state.values[name] = torch.add(state.values[name], grad, alpha=-x_lr)
                else:
                    state.values[name].grad = grad
                moved.add(name)
                active.add(name)
        if optimizer is not None:
            optimizer.step()
            moved = set(inferred)
        done += 1
    table = _weighted(per_node, halves)
    check_trace(graph, table, names, growth)
    for name in inferred:
        state.values[name] = state.values[name].detach()
    mus = {n: mu.detach() for n, (_, mu) in local.items()}
    graph.fill_sinks(state, mus)
    trace = list((table.sum(1) / state.batch).unbind())
    return Relaxation(state, mus, trace, done, converged, local, signals)


def _weighted(per_node: list[Tensor], halves: Tensor) -> Tensor:
    table = torch.stack(per_node)
    return table * halves if table.shape[1] == halves.shape[0] else table


def add_gradients(a: list[Tensor | None], b: list[Tensor | None]) -> list[Tensor | None]:
    """Elementwise sum of two gradient lists in which ``None`` means zero."""
    return [y if x is None else x if y is None else x + y for x, y in zip(a, b)]


def precision_gradients(
    graph: EnergyGraph, state: State, mus: dict[str, Tensor], names: list[str], params: Sequence[Tensor]
) -> list[Tensor | None]:
    """Gradient of the batch-mean energy over the learnable precisions, errors held fixed."""
    learnable = [n for n in names if graph.precisions[n].learnable]
    if not learnable or not params:
        return [None] * len(params)
    with torch.enable_grad():
        energy = torch.stack(
            [graph.node_energy(n, state.values[n].detach(), mus[n].detach(), state).sum() for n in learnable]
        ).sum() / state.batch
        return list(torch.autograd.grad(energy, list(params), allow_unused=True))
