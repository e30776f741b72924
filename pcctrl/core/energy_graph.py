"""The PC engine's graph: value nodes, their predictions, precisions and energy."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import DTypeError, InvalidArgumentError, NodeShapeError, ShapeError, UnknownNodeError
from .precision import Precision

EnergyKind = Literal["gaussian", "ce"]


def parameter_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of ``module``'s first parameter (torch's default dtype if it has none)."""
    for param in module.parameters():
        return param.dtype
    return torch.get_default_dtype()


@dataclass(frozen=True)
class NodeSpec:
    """One value node: its parents and the function that predicts it from their values.

    A node without ``predict`` is a root: it carries no energy of its own. ``energy`` is
    ``"gaussian"`` (precision-weighted squared error) or ``"ce"`` (categorical: the value is a
    target distribution, the prediction logits; only for nodes that predict nothing further).
    """

    name: str
    parents: tuple[str, ...] = ()
    predict: Callable[..., Tensor] | None = None
    energy: EnergyKind = "gaussian"
    shape: tuple[int, ...] | None = None
    about: str = ""


@dataclass
class State:
    """Node values during one inference, with what is clamped, inferred and observed."""

    values: dict[str, Tensor]
    clamped: set[str]
    infer_mask: dict[str, Tensor | None]
    observed: dict[str, Tensor]
    kinds: dict[str, EnergyKind]
    batch: int

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the node values."""
        return next(iter(self.values.values())).dtype

    @property
    def device(self) -> torch.device:
        """The device of the node values."""
        return next(iter(self.values.values())).device

    def inferred(self) -> list[str]:
        """Names of nodes (or clamped nodes with missing entries) whose values are relaxed."""
        return list(self.infer_mask)


@dataclass
class _Structure:
    order: list[str]
    children: dict[str, list[str]]
    topo: list[str] | None
    levels: dict[str, int] | None = field(default=None)


class EnergyGraph(nn.Module):
    """A PC graph: value nodes ``x_i``, predictions ``mu_i = f_i(parents)``, energy ``E``.

    ``E = sum_i 1/2 eps_i^T Pi_i eps_i - 1/2 log det Pi_i`` with ``eps_i = x_i - mu_i``. Cycles
    are allowed; acyclic graphs additionally support feed-forward initialisation and the
    fixed-prediction and exact algorithms. ``owner`` holds the parameters of the predictions.
    """

    def __init__(
        self,
        specs: Iterable[NodeSpec],
        owner: nn.Module,
        precisions: Mapping[str, Precision] | None = None,
    ) -> None:
        super().__init__()
        self.specs: dict[str, NodeSpec] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise InvalidArgumentError("specs", f"duplicate node name {spec.name!r}")
            self.specs[spec.name] = spec
        for spec in self.specs.values():
            for parent in spec.parents:
                if parent not in self.specs:
                    raise UnknownNodeError(parent, list(self.specs))
            if spec.parents and spec.predict is None:
                raise InvalidArgumentError(f"node {spec.name!r}", "has parents but no prediction function")
        self.owner = owner
        precisions = dict(precisions or {})
        for name in precisions:
            if name not in self.specs:
                raise UnknownNodeError(name, list(self.specs))
        self.precisions = nn.ModuleDict(
            {name: precisions.get(name, Precision.scalar()) for name in self.predicted()}
        )
        self._structure = self._analyse()

    def predicted(self) -> list[str]:
        """Names of the nodes that have a prediction (and so an energy term)."""
        return [n for n, s in self.specs.items() if s.predict is not None]

    @property
    def children(self) -> dict[str, list[str]]:
        """For each node, the nodes it predicts."""
        return self._structure.children

    @property
    def is_acyclic(self) -> bool:
        """Whether the graph has a topological order."""
        return self._structure.topo is not None

    @property
    def topo_order(self) -> list[str]:
        """Nodes parents-first; raises on a graph with cycles."""
        if self._structure.topo is None:
            raise InvalidArgumentError("graph", "has cycles; it has no feed-forward order")
        return self._structure.topo

    @property
    def levels(self) -> dict[str, int]:
        """Longest path from each node to a node that predicts nothing (acyclic graphs)."""
        if self._structure.levels is None:
            order = self.topo_order
            levels: dict[str, int] = {}
            for name in reversed(order):
                kids = self.children[name]
                levels[name] = 1 + max(levels[k] for k in kids) if kids else 0
            self._structure.levels = levels
        return self._structure.levels

    @property
    def depth(self) -> int:
        """Length of the longest path through the graph (acyclic graphs)."""
        return max(self.levels.values())

    def _analyse(self) -> _Structure:
        children: dict[str, list[str]] = {n: [] for n in self.specs}
        indegree = {n: len(set(s.parents)) for n, s in self.specs.items()}
        for name, spec in self.specs.items():
            for parent in dict.fromkeys(spec.parents):
                children[parent].append(name)
        queue = deque(n for n, d in indegree.items() if d == 0)
        topo: list[str] = []
        while queue:
            name = queue.popleft()
            topo.append(name)
            for child in children[name]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    queue.append(child)
        acyclic = len(topo) == len(self.specs)
        return _Structure(list(self.specs), children, topo if acyclic else None)

    def describe(self, name: str) -> str:
        """The node's name with what it is, for error messages."""
        about = self.specs[name].about
        return f"{name!r} ({about})" if about else repr(name)

    # ---- clamping ---------------------------------------------------------------------------

    def prepare(
        self,
        clamps: Mapping[str, Tensor],
        kinds: Mapping[str, EnergyKind] | None = None,
    ) -> State:
        """Check clamped values and build the inference state (values not yet initialised).

        A NaN entry of a clamped value is missing: on a node that predicts other nodes it is
        inferred like a free node; on a node that predicts nothing it has zero precision.
        """
        if not clamps:
            raise InvalidArgumentError("clamps", "must clamp at least one node")
        kinds = {**{n: s.energy for n, s in self.specs.items()}, **(kinds or {})}
        values: dict[str, Tensor] = {}
        observed: dict[str, Tensor] = {}
        infer_mask: dict[str, Tensor | None] = {}
        batch: int | None = None
        for name, value in clamps.items():
            if name not in self.specs:
                raise UnknownNodeError(name, list(self.specs))
            value, finite = self._as_node_value(name, value, kinds[name])
            if batch is None:
                batch = value.shape[0]
            elif value.shape[0] != batch:
                raise NodeShapeError(
                    f"node {self.describe(name)}: batch size {value.shape[0]} differs from the "
                    f"batch size {batch} of the other clamped nodes"
                )
            missing = None if finite else torch.isnan(value)
            if missing is not None and bool(missing.any()):
                value = torch.where(missing, torch.zeros((), dtype=value.dtype, device=value.device), value)
                if self.children[name]:
                    infer_mask[name] = missing
                else:
                    observed[name] = ~missing
            values[name] = value
        for name in self.specs:
            if name not in values and self.children[name]:
                infer_mask[name] = None
        assert batch is not None
        return State(values, set(values), infer_mask, observed, dict(kinds), batch)

    def _as_node_value(self, name: str, value: Tensor, kind: EnergyKind) -> tuple[Tensor, bool]:
        """``value`` checked and cast for node ``name``, and whether all its entries are finite."""
        if not isinstance(value, Tensor):
            raise TypeError(f"node {self.describe(name)}: expected a torch.Tensor, got {type(value).__name__}")
        spec = self.specs[name]
        if kind == "ce" and not value.is_floating_point():
            if value.ndim != 1:
                raise NodeShapeError(
                    f"node {self.describe(name)}: class labels must be a 1-D integer tensor, "
                    f"got shape {tuple(value.shape)}"
                )
            if spec.shape is None:
                raise NodeShapeError(f"node {self.describe(name)}: size unknown; pass one-hot targets")
            classes = spec.shape[-1]
            if bool(((value < 0) | (value >= classes)).any()):
                raise InvalidArgumentError(f"node {self.describe(name)}", f"class labels must lie in [0, {classes})")
            return nn.functional.one_hot(value.long(), classes).to(parameter_dtype(self.owner)), True
        if value.is_complex():
            raise DTypeError(f"node {self.describe(name)}", f"complex values are not supported, got {value.dtype}")
        if not value.is_floating_point():
            raise TypeError(f"node {self.describe(name)}: expected a floating tensor, got {value.dtype}")
        if value.ndim == 0:
            raise NodeShapeError(f"node {self.describe(name)}: values need a leading batch dimension")
        if value.shape[0] == 0:
            raise ShapeError(f"node {self.describe(name)}", "the batch is empty; pass at least one sample")
        param = next(iter(self.owner.parameters()), None)
        if param is not None and value.dtype != param.dtype:
            # Documented: values of another float dtype are cast to the parameters' dtype.
            value = value.to(param.dtype)
        if spec.shape is not None and tuple(value.shape[1:]) != tuple(spec.shape):
            raise NodeShapeError(
                f"node {self.describe(name)}: expected shape (batch, {', '.join(map(str, spec.shape))}), "
                f"got {tuple(value.shape)}"
            )
        finite = bool(torch.isfinite(value.sum()))
        if not finite and bool(torch.isinf(value).any()):
            raise InvalidArgumentError(
                f"node {self.describe(name)}", "value contains inf; use NaN to mark a missing entry"
            )
        return value, finite


    # ---- predictions and energy -------------------------------------------------------------

    def predict(self, name: str, values: Mapping[str, Tensor]) -> Tensor:
        """``mu`` of one node from the current values of its parents."""
        spec = self.specs[name]
        assert spec.predict is not None
        mu = spec.predict(*(values[p] for p in spec.parents))
        return mu

    def check_prediction(self, name: str, mu: Tensor, value: Tensor) -> None:
        """Raise if a node's value and prediction disagree in shape."""
        if mu.shape != value.shape:
            raise NodeShapeError(
                f"node {self.describe(name)}: value has shape {tuple(value.shape)} but the "
                f"prediction has shape {tuple(mu.shape)}"
            )

    def node_energy(self, name: str, value: Tensor, mu: Tensor, state: State) -> Tensor:
        """Per-sample energy of one node given its value and prediction."""
        if state.kinds[name] == "ce":
            return -(value * torch.log_softmax(mu, dim=-1)).sum(-1)
        return self.precisions[name].energy(value - mu, state.observed.get(name))

    def signal_and_energy(self, name: str, value: Tensor, mu: Tensor, state: State) -> tuple[Tensor, Tensor]:
        """``-dE_i/dmu_i`` (the weighted error node ``i`` sends to its parents) and its batch-summed energy."""
        if state.kinds[name] == "ce":
            log_p = torch.log_softmax(mu, dim=-1)
            return value - log_p.exp(), -(value * log_p).sum()
        precision = self.precisions[name]
        eps = value - mu
        observed = state.observed.get(name)
        return precision.weigh(eps, observed), precision.total_energy(eps, observed)

    def energy_nodes(self, state: State) -> list[str]:
        """Predicted nodes whose energy counts: clamped ones and ones that predict others.

        A free node that predicts nothing is always at its prediction (zero error), the exact
        minimum of its own term, so it is left out of the energy.
        """
        return [n for n in self.predicted() if n in state.clamped or self.children[n]]

    def initialise(self, state: State) -> None:
        """Start values on a graph with cycles: zeros, then one sweep outward from the clamped nodes.

        (Acyclic graphs start from a feed-forward pass, see ``inference.local_forward``.)
        """
        for name, spec in self.specs.items():
            if name not in state.values:
                if spec.shape is None:
                    raise NodeShapeError(f"node {self.describe(name)}: needs a declared shape")
                state.values[name] = torch.zeros((state.batch, *spec.shape), dtype=state.dtype, device=state.device)
        with torch.no_grad():
            for name in self._sweep_order(state):
                if self.specs[name].predict is None or (name in state.clamped and name not in state.infer_mask):
                    continue
                mu = self.predict(name, state.values)
                if name in state.clamped:
                    state.values[name] = torch.where(state.infer_mask[name], mu, state.values[name])
                else:
                    state.values[name] = mu

    def _sweep_order(self, state: State) -> list[str]:
        seen = set(state.clamped)
        order: list[str] = []
        queue = deque(state.clamped)
        while queue:
            for child in self.children[queue.popleft()]:
                if child not in seen:
                    seen.add(child)
                    order.append(child)
                    queue.append(child)
        return order + [n for n in self.specs if n not in seen]

    def fill_sinks(self, state: State, mus: Mapping[str, Tensor]) -> None:
        """Set free sink nodes, and missing entries of clamped sinks, to their predictions."""
        for name in self.predicted():
            if self.children[name]:
                continue
            mu = mus[name].detach()
            if name not in state.clamped:
                state.values[name] = mu
            elif name in state.observed:
                state.values[name] = torch.where(state.observed[name], state.values[name], mu)
