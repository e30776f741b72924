"""``PCNetwork``: a feed-forward network trained by predictive coding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, fx, nn

from .energy_graph import EnergyGraph, NodeSpec, State
from .fused import FusedChain
from .guard import NO_GUARD, DivergenceGuard
from .inference import NodeOptimizer, Relaxation, Settings, relax
from .learning import (
    StepRecord,
    apply_update,
    check_algorithm,
    learnable_parameters,
    pc_gradients,
    train_step,
)
from .precision import Precision
from .traced import specs_from_trace, trace

Loss = Literal["mse", "ce"]
_DEFAULTS = {"il": (20, 0.1), "ipc": (20, 0.1)}


@dataclass
class _Wiring:
    """What a ``PCNetwork`` derives from its module: the fx trace, and (on first use) the energy
    graph, its input and output nodes and the fused chain. A plain object, so ``nn.Module``
    neither registers nor saves the shared parameters a second time through it."""

    traced: fx.GraphModule | None
    graph: EnergyGraph | None = None
    inputs: list[str] = field(default_factory=list)
    output: str = ""
    fused: FusedChain | None = None


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

    ``fused=True`` (default) runs ``il``/``fpa``/``exact`` learning steps on the fused analytic
    path (``core/fused.py``) wherever it is valid: an ``nn.Sequential`` of known layers, unit
    precisions, no missing entries, no node optimizer. ``fused=False`` forces the general
    autograd path; both give the same update to rounding. ``guard`` bounds energy growth and
    weight steps (``core/guard.py``; ``None`` turns it off). Inputs and targets of another float
    dtype are cast to the parameters' dtype.
    """

    def __init__(
        self,
        module: nn.Module,
        algorithm: str = "il",
        *,
        T: int | None = None,
        x_lr: float | None = None,
        tol: float | None = None,
        node_optimizer: NodeOptimizer | None = None,
        precisions: Mapping[str, Precision] | None = None,
        fused: bool = True,
        guard: DivergenceGuard | None = DivergenceGuard(),
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
        self.fused = fused
        self.guard = guard if guard is not None else NO_GUARD
        self._wiring = _Wiring(None if isinstance(module, nn.Sequential) else trace(module))

    @classmethod
    def from_module(cls, module: nn.Module, **kwargs: object) -> "PCNetwork":
        """A PC network over any ``torch.fx``-traceable module: a value node per call site."""
        net = cls(module, **kwargs)  # type: ignore[arg-type]
        if net._wiring.traced is None:
            net._wiring.traced = trace(module)
        return net

    def forward(self, *inputs: Tensor) -> Tensor:
        """Feed-forward prediction."""
        return self.module(*inputs)

    # ---- the graph --------------------------------------------------------------------------

    def graph(self, *example: Tensor) -> EnergyGraph:
        """The PC graph (built from an example input on first use)."""
        wiring = self._wiring
        if wiring.graph is None:
            if not example:
                raise RuntimeError("the graph is built on first use: pass an example input")
            self._build(example)
        assert wiring.graph is not None
        return wiring.graph

    def _build(self, example: Sequence[Tensor]) -> None:
        wiring = self._wiring
        param = next(iter(self.module.parameters()), None)
        if param is not None:
            example = [e.to(param.dtype) if e.is_floating_point() else e for e in example]
        if wiring.traced is not None:
            traced = specs_from_trace(wiring.traced, example)
            specs, inputs, output = traced.specs, traced.inputs, traced.output
            owner: nn.Module = wiring.traced
        else:
            specs, inputs, output = self._sequential_specs(example)
            owner = self.module
        graph = EnergyGraph(specs, owner, dict(self.precisions.items()))
        for name, precision in self.precisions.items():
            shape = graph.specs[name].shape
            if shape is not None:
                precision.check_shape(torch.Size(shape), name)
        plain = all(p.is_identity for p in graph.precisions.values())
        wiring.fused = FusedChain.of(self.module) if wiring.traced is None and plain else None
        wiring.graph, wiring.inputs, wiring.output = graph, inputs, output

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
    def has_fused_path(self) -> bool:
        """Whether the module is a chain the fused path can run (known once the graph is built)."""
        return self.fused and self._wiring.fused is not None

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
            self.guard,
        )

    def _fused_chain(self, state: State, settings: Settings) -> FusedChain | None:
        """The fused chain when it is valid for this step: known layers, nothing missing."""
        chain = self._wiring.fused
        if (
            not self.fused or chain is None or settings.node_optimizer is not None
            or settings.algorithm not in ("il", "fpa", "exact") or state.observed
            or any(mask is not None for mask in state.infer_mask.values())
            or self._wiring.output not in state.clamped
        ):
            return None
        return chain

    def _fused_gradients(
        self, chain: FusedChain, state: State, settings: Settings
    ) -> tuple[list[nn.Parameter], list[Tensor | None], list[Tensor], int, bool]:
        graph = self.graph()
        params = learnable_parameters(graph)
        inputs, output = self._wiring.inputs[0], self._wiring.output
        if settings.algorithm == "exact":
            grads, trace = chain.exact_grads(graph, state, inputs, output, params)
            return params, grads, trace, graph.depth, True
        grads, trace, steps, converged = chain.relax_and_grads(graph, state, inputs, output, settings, params)
        return params, grads, trace, steps, converged

    def _state(self, x: Tensor | Sequence[Tensor], y: Tensor | None, loss: str) -> State:
        inputs = (x,) if isinstance(x, Tensor) else tuple(x)
        for value in inputs:
            if not isinstance(value, Tensor):
                raise TypeError(f"inputs must be torch.Tensor (or a sequence of them), got {type(value).__name__}")
        graph = self.graph(*inputs)
        wiring = self._wiring
        if len(inputs) != len(wiring.inputs):
            raise TypeError(f"the network takes {len(wiring.inputs)} input(s), got {len(inputs)}")
        clamps = dict(zip(wiring.inputs, inputs))
        if y is not None:
            clamps[wiring.output] = y
        kind = "ce" if _check_loss(loss) == "ce" else "gaussian"
        return graph.prepare(clamps, kinds={wiring.output: kind})

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
        settings = self._settings()
        chain = self._fused_chain(state, settings)
        if chain is None:
            return train_step(self.graph(), state, settings, optimizer, self)
        params, grads, trace, steps, converged = self._fused_gradients(chain, state, settings)
        apply_update(params, grads, settings, optimizer, self)
        return StepRecord(settings.algorithm, torch.stack(trace).tolist(), steps, converged)

    def pc_gradients(
        self, x: Tensor | Sequence[Tensor], y: Tensor, loss: str = "mse", algorithm: str | None = None
    ) -> dict[str, Tensor]:
        """The PC update of each named parameter (as a gradient), without touching anything."""
        state = self._state(x, y, loss)
        graph = self.graph()
        settings = self._settings(algorithm)
        chain = self._fused_chain(state, settings)
        if chain is None:
            params, (grads, _) = learnable_parameters(graph), pc_gradients(graph, state, settings)
        else:
            params, grads, *_ = self._fused_gradients(chain, state, settings)
        by_id = {id(p): g for p, g in zip(params, grads)}
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
        return relax(self.graph(), state, self._settings())
