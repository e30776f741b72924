"""``PCGraph``: explicit nodes and edges, cycles allowed; one graph, many jobs by clamping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .energy_graph import EnergyGraph, NodeSpec, parameter_dtype
from .guard import NO_GUARD, DivergenceGuard
from .inference import NodeOptimizer, Relaxation, Settings, relax
from .learning import StepRecord, check_algorithm, train_step
from .precision import Precision


@dataclass
class _GraphCache:
    """The energy graph, built on first use. A plain object, so ``nn.Module`` does not register
    (and save) the edges a second time through it."""

    graph: EnergyGraph | None = None


class _EdgeSum:
    """A node's prediction: the sum of its incoming edges applied to their source values."""

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        self.modules = list(modules)

    def __call__(self, *sources: Tensor) -> Tensor:
        total = self.modules[0](sources[0])
        for module, source in zip(self.modules[1:], sources[1:]):
            total = total + module(source)
        return total


class PCGraph(nn.Module):
    """A predictive-coding graph with named nodes and module-carrying edges.

    Node ``i`` is predicted by the sum of ``edge(x_src)`` over its incoming edges. Cycles are
    allowed (PC graphs, Salvatori et al. 2022). Clamp any subset of nodes and infer the rest:
    clamp the input to classify, the label to generate, part of a pattern to recall the rest
    (NaN entries of a clamped value are missing and are inferred). Learning uses ``"il"`` or
    ``"ipc"``; ``"fpa"``/``"exact"`` need an acyclic graph. ``guard`` (``DivergenceGuard``, on by
    default; ``None`` turns it off) stops diverging relaxations and weight steps. ``infer`` uses the
    graph's algorithm: with ``"fpa"`` predictions stay at their starting values, as in
    ``PCNetwork.relax``.

    Example::

        g = PCGraph({"image": 64, "hidden": 128, "label": 10})
        g.connect("image", "hidden", nn.Linear(64, 128))
        g.connect("hidden", "label", nn.Sequential(nn.Tanh(), nn.Linear(128, 10)))
        g.connect("hidden", "image", nn.Sequential(nn.Tanh(), nn.Linear(128, 64)))
        g.train_step({"image": x, "label": y}, optimizer)
        labels = g.infer({"image": x}).values["label"]
    """

    def __init__(
        self,
        nodes: Mapping[str, int | Sequence[int]],
        edges: Iterable[tuple[str, str, nn.Module]] = (),
        precisions: Mapping[str, Precision] | None = None,
        *,
        algorithm: str = "il",
        T: int = 50,
        x_lr: float = 0.1,
        tol: float | None = None,
        node_optimizer: NodeOptimizer | None = None,
        guard: DivergenceGuard | None = DivergenceGuard(),
    ) -> None:
        super().__init__()
        check_algorithm(algorithm)
        if not nodes:
            raise ValueError("a PCGraph needs at least one node")
        self.shapes: dict[str, tuple[int, ...]] = {}
        for name, size in nodes.items():
            shape = (size,) if isinstance(size, int) else tuple(size)
            if "." in name or not name or any(s <= 0 for s in shape):
                raise ValueError(f"node {name!r}: needs a name without '.' and positive sizes, got {size}")
            self.shapes[name] = shape
        self.edges = nn.ModuleDict()
        self._edge_list: list[tuple[str, str]] = []
        self.precisions = nn.ModuleDict(dict(precisions or {}))
        for name in self.precisions:
            self._check_node(name)
        self.algorithm = algorithm
        self.T = T
        self.x_lr = x_lr
        self.tol = tol
        self.node_optimizer = node_optimizer
        self.guard = guard if guard is not None else NO_GUARD
        self._cache = _GraphCache()
        for src, dst, module in edges:
            self.connect(src, dst, module)

    def _check_node(self, name: str) -> None:
        if name not in self.shapes:
            raise KeyError(f"unknown node {name!r}; the graph has nodes {list(self.shapes)}")

    def connect(self, src: str, dst: str, module: nn.Module) -> None:
        """Add an edge: ``module(x_src)`` becomes part of the prediction of ``dst``."""
        self._check_node(src)
        self._check_node(dst)
        if (src, dst) in self._edge_list:
            raise ValueError(f"edge {src!r} -> {dst!r} already exists")
        with torch.no_grad():
            probe = torch.zeros((1, *self.shapes[src]), dtype=parameter_dtype(module))
            try:
                out = module(probe)
            except Exception as exc:
                raise ValueError(
                    f"edge {src!r} -> {dst!r}: the module fails on an input of shape "
                    f"(batch, {', '.join(map(str, self.shapes[src]))}): {exc}"
                ) from exc
        if tuple(out.shape[1:]) != self.shapes[dst]:
            raise ValueError(
                f"edge {src!r} -> {dst!r}: the module maps to shape {tuple(out.shape[1:])}, "
                f"node {dst!r} has shape {self.shapes[dst]}"
            )
        self.edges[f"{src}__{dst}"] = module
        self._edge_list.append((src, dst))
        self._cache.graph = None

    def graph(self) -> EnergyGraph:
        """The underlying energy graph."""
        if self._cache.graph is None:
            specs = []
            for name, shape in self.shapes.items():
                incoming = [(s, d) for s, d in self._edge_list if d == name]
                modules = [self.edges[f"{s}__{d}"] for s, d in incoming]
                specs.append(
                    NodeSpec(
                        name,
                        tuple(s for s, _ in incoming),
                        _EdgeSum(modules) if modules else None,
                        shape=shape,
                    )
                )
            graph = EnergyGraph(specs, self.edges, dict(self.precisions.items()))
            for name, precision in self.precisions.items():
                precision.check_shape(torch.Size(self.shapes[name]), name)
            self._cache.graph = graph
        return self._cache.graph

    def _settings(self, steps: int | None) -> Settings:
        return Settings(
            self.algorithm, self.T if steps is None else steps, self.x_lr, self.tol, self.node_optimizer, self.guard
        )

    def infer(self, clamps: Mapping[str, Tensor], T: int | None = None) -> Relaxation:
        """Clamp the given nodes (NaN entries missing) and relax the others; weights unchanged."""
        graph = self.graph()
        state = graph.prepare(clamps)
        return relax(graph, state, self._settings(T))

    def train_step(
        self, clamps: Mapping[str, Tensor], optimizer: torch.optim.Optimizer | None = None, T: int | None = None
    ) -> StepRecord:
        """Relax with ``clamps`` fixed, then take a local weight step (writes ``.grad``)."""
        graph = self.graph()
        return train_step(graph, graph.prepare(clamps), self._settings(T), optimizer, self)
