"""``PCNetwork``: a feed-forward network trained by predictive coding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor, fx, nn

from .graph import EnergyGraph, NodeSpec, State
from .inference import NodeOptimizer, Relaxation, relax
from .learning import Settings, StepRecord, check_algorithm, pc_gradients, train_step
from .precision import Precision
from .traced import specs_from_trace, trace

Loss = Literal["mse", "ce"]
_DEFAULTS = {"il": (20, 0.1), "ipc": (20, 0.1)}


def _check_loss(loss: str) -> Loss:
    if loss not in ("mse", "ce"):
        raise ValueError(f"unknown loss {loss!r}; choose 'mse' (1/2 squared error) or 'ce' (cross-entropy)")
    return loss  # type: ignore[return-value]


class PCNetwork(nn.Module):
    """A network whose value nodes sit at module boundaries (or traced call sites).

    ``net(x)`` is the ordinary feed-forward prediction. ``net.train_step(x, y, optimizer)``
    clamps the input to ``x`` and the output to ``y``, relaxes the hidden nodes and writes each
    parameter's local PC update into ``.grad`` before stepping the optimizer.

    Algorithms: ``"il"`` (inference learning), ``"fpa"`` (fixed predictions; with ``x_lr=1``
    and ``T`` = depth it equals backprop), ``"exact"`` (Z-IL: equals backprop, ``T`` = depth),
    ``"ipc"`` (incremental PC). ``T`` defaults to 20 for il/ipc and to the depth otherwise;
    ``x_lr`` to 0.1 for il/ipc and 1 otherwise. The output energy is ``1/2 |y - mu|^2``
    (``loss="mse"``) or the cross-entropy of logits ``mu`` (``loss="ce"``), both averaged over
    the batch for the weight step.
    """

    def __init__(
        self,
        module: nn.Module,
        algorithm: str = "il",
        T: int | None = None,
        x_lr: float | None = None,
        tol: float | None = None,
        node_optimizer: NodeOptimizer | None = None,
        precisions: Mapping[str, Precision] | None = None,
    ) -> None:
        super().__init__()
        check_algorithm(algorithm)
        if T is not None and T < 0:
            raise ValueError(f"T must be a non-negative number of inference steps, got {T}")
        if x_lr is not None and not x_lr > 0:
            raise ValueError(f"x_lr must be positive, got {x_lr}")
        self.module = module
        self.algorithm = algorithm
        self.T = T
        self.x_lr = x_lr
        self.tol = tol
        self.node_optimizer = node_optimizer
        self.precisions = nn.ModuleDict(dict(precisions or {}))
        # Kept out of the module registry: they share the parameters of ``module``.
        object.__setattr__(self, "_traced", None if isinstance(module, nn.Sequential) else trace(module))
        object.__setattr__(self, "_graph", None)

    @classmethod
    def from_module(cls, module: nn.Module, **kwargs: object) -> "PCNetwork":
        """A PC network over any ``torch.fx``-traceable module: a value node per call site."""
        net = cls(module, **kwargs)  # type: ignore[arg-type]
        if net._traced is None:
            object.__setattr__(net, "_traced", trace(module))
        return net

    def forward(self, *inputs: Tensor) -> Tensor:
        """Feed-forward prediction."""
        return self.module(*inputs)

    # ---- the graph --------------------------------------------------------------------------

    def graph(self, *example: Tensor) -> EnergyGraph:
        """The PC graph (built from an example input on first use)."""
        if self._graph is None:
            if not example:
                raise RuntimeError("the graph is built on first use: pass an example input")
            object.__setattr__(self, "_graph", self._build(example))
        return self._graph

    def _build(self, example: Sequence[Tensor]) -> EnergyGraph:
        if self._traced is not None:
            traced = specs_from_trace(self._traced, example)
            specs, self._inputs, self._output = traced.specs, traced.inputs, traced.output
            owner: nn.Module = self._traced
        else:
            specs, self._inputs, self._output = self._sequential_specs(example)
            owner = self.module
        graph = EnergyGraph(specs, owner, dict(self.precisions.items()))
        for name, precision in self.precisions.items():
            shape = graph.specs[name].shape
            if shape is not None:
                precision.check_shape(torch.Size(shape), name)
        return graph

    def _sequential_specs(self, example: Sequence[Tensor]) -> tuple[list[NodeSpec], list[str], str]:
        if len(example) != 1:
            raise TypeError(f"an nn.Sequential network takes one input, got {len(example)}")
        value = example[0]
        specs = [NodeSpec("x0", shape=tuple(value.shape[1:]), about="input")]
        with torch.no_grad():
            for i, layer in enumerate(self.module):
                value = layer(value)
                specs.append(
                    NodeSpec(
                        f"x{i + 1}", (f"x{i}",), layer, shape=tuple(value.shape[1:]),
                        about=f"output of layer {i}: {type(layer).__name__}",
                    )
                )
        return specs, ["x0"], specs[-1].name

    @property
    def depth(self) -> int:
        """Longest path from the input to the output, in value nodes."""
        return self.graph().depth

    def _settings(self, algorithm: str | None = None) -> Settings:
        algorithm = algorithm or self.algorithm
        check_algorithm(algorithm)
        steps, x_lr = _DEFAULTS.get(algorithm, (None, 1.0))
        return Settings(
            algorithm,
            self.T if self.T is not None else (steps if steps is not None else self.depth),
            self.x_lr if self.x_lr is not None else x_lr,
            self.tol,
            self.node_optimizer,
        )

    def _state(self, x: Tensor | Sequence[Tensor], y: Tensor | None, loss: str) -> State:
        inputs = (x,) if isinstance(x, Tensor) else tuple(x)
        for value in inputs:
            if not isinstance(value, Tensor):
                raise TypeError(f"inputs must be torch.Tensor (or a sequence of them), got {type(value).__name__}")
        graph = self.graph(*inputs)
        if len(inputs) != len(self._inputs):
            raise TypeError(f"the network takes {len(self._inputs)} input(s), got {len(inputs)}")
        clamps = dict(zip(self._inputs, inputs))
        if y is not None:
            clamps[self._output] = y
        kind = "ce" if _check_loss(loss) == "ce" else "gaussian"
        return graph.prepare(clamps, kinds={self._output: kind})

    # ---- PC operations ----------------------------------------------------------------------

    def train_step(
        self,
        x: Tensor | Sequence[Tensor],
        y: Tensor,
        optimizer: torch.optim.Optimizer | None = None,
        loss: str = "mse",
    ) -> StepRecord:
        """One PC learning step on a batch; writes ``.grad`` and steps ``optimizer`` if given."""
        state = self._state(x, y, loss)
        return train_step(self.graph(), state, self._settings(), optimizer)

    def pc_gradients(
        self, x: Tensor | Sequence[Tensor], y: Tensor, loss: str = "mse", algorithm: str | None = None
    ) -> dict[str, Tensor]:
        """The PC update of each named parameter (as a gradient), without touching anything."""
        state = self._state(x, y, loss)
        graph = self.graph()
        grads, _ = pc_gradients(graph, state, self._settings(algorithm))
        by_id = {id(p): g for p, g in zip([p for p in graph.parameters() if p.requires_grad], grads)}
        return {
            name: by_id[id(p)] if by_id.get(id(p)) is not None else torch.zeros_like(p)
            for name, p in self.named_parameters()
            if p.requires_grad
        }

    def relax(
        self, x: Tensor | Sequence[Tensor], y: Tensor | None = None, loss: str = "mse"
    ) -> Relaxation:
        """Inference only: node values and energy trace with the input (and target) clamped."""
        state = self._state(x, y, loss)
        settings = self._settings()
        graph = self.graph()
        return relax(
            graph, state, settings.steps, settings.x_lr, settings.tol, settings.node_optimizer,
            fixed_predictions=settings.algorithm in ("fpa", "exact"),
        )
