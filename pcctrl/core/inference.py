"""Inference: relaxation of the free value nodes of an ``EnergyGraph`` down its energy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .errors import NonFiniteEnergyError
from .graph import EnergyGraph, State

NodeOptimizer = Callable[[Sequence[Tensor]], torch.optim.Optimizer]
"""Builds a torch optimizer over the free node tensors, e.g. ``lambda xs: torch.optim.Adam(xs, lr=0.05)``."""


@dataclass
class Relaxation:
    """The outcome of one inference: final values, predictions and the energy per step.

    ``energy`` holds the batch-mean energy before each step and after the last one.
    ``local_graphs`` (fixed-prediction algorithms only) keeps each node's prediction and the
    detached parent leaves it was computed from, for the local weight update.
    """

    state: State
    mus: dict[str, Tensor]
    energy_steps: list[Tensor]
    steps: int
    converged: bool
    local_graphs: dict[str, tuple[tuple[Tensor, ...], Tensor]] = field(default_factory=dict)

    @property
    def values(self) -> dict[str, Tensor]:
        """Node values after relaxation."""
        return self.state.values

    @property
    def energy(self) -> list[float]:
        """Batch-mean energy trace as Python floats."""
        return torch.stack(self.energy_steps).tolist() if self.energy_steps else []


def _check_finite(graph: EnergyGraph, per_node: list[Tensor], names: list[str]) -> None:
    """Raise ``NonFiniteEnergyError`` naming nodes whose energy is NaN/inf at the first bad step."""
    if not per_node:
        return
    table = torch.stack(per_node)
    finite = torch.isfinite(table)
    if bool(finite.all()):
        return
    bad_step = int((~finite.all(dim=1)).nonzero()[0, 0])
    bad = [names[i] for i in (~finite[bad_step]).nonzero().flatten().tolist()]
    raise NonFiniteEnergyError([graph.describe(n) for n in bad], bad_step)


def _masked(grad: Tensor, mask: Tensor | None) -> Tensor:
    return grad if mask is None else grad * mask


def relax(
    graph: EnergyGraph,
    state: State,
    steps: int,
    x_lr: float,
    tol: float | None = None,
    node_optimizer: NodeOptimizer | None = None,
    weight_hook: Callable[[Sequence[Tensor]], None] | None = None,
    params: Sequence[Tensor] = (),
    keep_final_graph: bool = False,
) -> Relaxation:
    """Gradient relaxation of the inferred nodes, predictions recomputed at every step.

    ``weight_hook`` (incremental PC) receives the energy gradient of ``params`` at every step,
    taken at the same point as the node gradient, and may update them. With
    ``keep_final_graph`` the final predictions keep their graph to the parameters (values
    detached), ready for the weight step.
    """
    names = graph.energy_nodes(state)
    inferred = state.inferred()
    for name in inferred:
        state.values[name] = state.values[name].detach().requires_grad_(True)
    xs = [state.values[n] for n in inferred]
    opt = node_optimizer(xs) if node_optimizer is not None and xs else None
    per_node: list[Tensor] = []
    trace: list[Tensor] = []
    previous: float | None = None
    converged = False
    done = 0
    mus: dict[str, Tensor] = {}
    for step in range(steps + 1):
        last = step == steps
        track = not last and (bool(xs) or weight_hook is not None)
        if not track:
            for name in inferred:
                state.values[name] = state.values[name].detach()
        with torch.set_grad_enabled(track or keep_final_graph):
            mus = {n: graph.predict(n, state.values) for n in graph.predicted()}
            energies = [graph.node_energy(n, state.values[n], mus[n], state).sum() for n in names]
            total = torch.stack(energies).sum() if energies else torch.zeros(())
        per_node.append(torch.stack(energies).detach() if energies else torch.zeros(1))
        trace.append(total.detach() / state.batch)
        if tol is not None:
            current = float(total.detach())
            if previous is not None and abs(previous - current) <= tol * max(abs(previous), 1e-12):
                converged = True
                track = False
            previous = current
        if not track:
            if not last and keep_final_graph:
                for name in inferred:
                    state.values[name] = state.values[name].detach()
                mus = {n: graph.predict(n, state.values) for n in graph.predicted()}
            break
        grads = torch.autograd.grad(total, xs + list(params), allow_unused=True)
        node_grads, param_grads = grads[: len(xs)], grads[len(xs):]
        if weight_hook is not None:
            _check_finite(graph, per_node, names)
            weight_hook(param_grads)
        with torch.no_grad():
            for name, x, g in zip(inferred, xs, node_grads):
                if g is None:
                    continue
                g = _masked(g, state.infer_mask[name])
                if opt is None:
                    x.sub_(g, alpha=x_lr)
                else:
                    x.grad = g
        if opt is not None:
            opt.step()
        done += 1
    _check_finite(graph, per_node, names)
    for name in inferred:
        state.values[name] = state.values[name].detach()
    graph.fill_sinks(state, mus)
    if not keep_final_graph:
        mus = {n: m.detach() for n, m in mus.items()}
    return Relaxation(state, mus, trace, done, converged)


def local_forward(
    graph: EnergyGraph, state: State
) -> dict[str, tuple[tuple[Tensor, ...], Tensor]]:
    """Feed-forward pass keeping, per node, its prediction's own graph from detached parents.

    Free nodes start at their predictions. Each prediction's graph starts at leaves, so a
    backward pass through it is local to that node.
    """
    inferred = set(state.inferred())
    local: dict[str, tuple[tuple[Tensor, ...], Tensor]] = {}
    for name in graph.topo_order:
        spec = graph.specs[name]
        if spec.predict is None:
            if name not in state.values:
                raise ValueError(f"node {graph.describe(name)} has no prediction and must be clamped")
            continue
        leaves = tuple(
            state.values[p].detach().requires_grad_(p in inferred) for p in spec.parents
        )
        mu = spec.predict(*leaves)
        if name in state.values:
            graph.check_prediction(name, mu, state.values[name])
        local[name] = (leaves, mu)
        if name not in state.clamped:
            state.values[name] = mu.detach()
        elif name in state.infer_mask:
            state.values[name] = torch.where(state.infer_mask[name], mu.detach(), state.values[name])
    return local


def _parent_feedback(
    graph: EnergyGraph,
    local: dict[str, tuple[tuple[Tensor, ...], Tensor]],
    signals: dict[str, Tensor],
    targets: set[str],
    retain: bool,
) -> dict[str, Tensor]:
    """Sum over children ``c`` of ``J_c^T signal_c`` for each target node, in one backward pass."""
    outputs, grad_outputs, leaves, owners = [], [], [], []
    for child, signal in signals.items():
        parent_leaves, mu = local[child]
        wanted = [(p, leaf) for p, leaf in zip(graph.specs[child].parents, parent_leaves)
                  if p in targets and leaf.requires_grad]
        if not wanted or not mu.requires_grad:
            continue
        outputs.append(mu)
        grad_outputs.append(signal)
        for p, leaf in wanted:
            leaves.append(leaf)
            owners.append(p)
    feedback: dict[str, Tensor] = {}
    if not outputs:
        return feedback
    grads = torch.autograd.grad(outputs, leaves, grad_outputs, retain_graph=retain, allow_unused=True)
    for owner, grad in zip(owners, grads):
        if grad is not None:
            feedback[owner] = feedback[owner] + grad if owner in feedback else grad
    return feedback


def relax_fixed_prediction(
    graph: EnergyGraph,
    state: State,
    steps: int,
    x_lr: float,
    tol: float | None = None,
) -> Relaxation:
    """Relaxation with predictions held at their feed-forward values (FPA).

    With unit precisions, ``x_lr = 1`` and ``steps`` at least the graph's depth, the errors
    equal backprop's negative gradients with respect to each node.
    """
    local = local_forward(graph, state)
    mus = {n: mu.detach() for n, (_, mu) in local.items()}
    names = graph.energy_nodes(state)
    inferred = state.inferred()
    per_node: list[Tensor] = []
    trace: list[Tensor] = []
    previous: float | None = None
    converged = False
    done = 0
    for step in range(steps + 1):
        with torch.no_grad():
            energies = [graph.node_energy(n, state.values[n], mus[n], state).sum() for n in names]
        per_node.append(torch.stack(energies) if energies else torch.zeros(1))
        total = per_node[-1].sum()
        trace.append(total / state.batch)
        if tol is not None:
            current = float(total.detach())
            if previous is not None and abs(previous - current) <= tol * max(abs(previous), 1e-12):
                converged = True
                break
            previous = current
        if step == steps or not inferred:
            break
        with torch.no_grad():
            signals = {n: graph.signal(n, state.values[n], mus[n], state) for n in names}
        feedback = _parent_feedback(graph, local, signals, set(inferred), retain=True)
        with torch.no_grad():
            for name in inferred:
                grad = -feedback[name] if name in feedback else None
                if name in signals:
                    grad = signals[name] if grad is None else grad + signals[name]
                if grad is not None:
                    state.values[name] = state.values[name] - x_lr * _masked(grad, state.infer_mask[name])
        done += 1
    _check_finite(graph, per_node, names)
    graph.fill_sinks(state, mus)
    return Relaxation(state, mus, trace, done, converged, local)
