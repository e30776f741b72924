"""Value nodes for any ``torch.fx``-traceable module: one node per tensor-valued call site."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, fx, nn

from .energy_graph import NodeSpec


@dataclass(frozen=True)
class TracedGraph:
    """Node specs of a traced module, with the names of its input and output nodes."""

    specs: list[NodeSpec]
    inputs: list[str]
    output: str


def trace(module: nn.Module) -> fx.GraphModule:
    """Symbolically trace ``module``; explains what to do when tracing fails."""
    try:
        return fx.symbolic_trace(module)
    except Exception as exc:  # fx raises many kinds of errors on untraceable code
        raise TypeError(
            f"torch.fx could not trace {type(module).__name__}: {exc}. Data-dependent Python "
            "control flow cannot be traced; unroll loops over fixed lengths, or wrap the "
            "untraceable part in a submodule and pass it to PCNetwork(nn.Sequential(...))."
        ) from exc


def _about(node: fx.Node) -> str:
    if node.op == "call_module":
        return f"module {node.target}"
    if node.op == "call_function":
        return f"{getattr(node.target, '__name__', str(node.target))}()"
    if node.op == "call_method":
        return f".{node.target}()"
    return node.op


class _NodeProgram:
    """Evaluates one value node's call site from its parent value nodes.

    Call sites that yield no tensor of their own (tuples, sizes, constants) are evaluated
    inline inside the value nodes that use them.
    """

    def __init__(self, gm: fx.GraphModule, node: fx.Node, value_nodes: set[fx.Node]) -> None:
        self.gm = gm
        self.node = node
        self.value_nodes = value_nodes
        parents: dict[fx.Node, None] = {}
        self._collect(node, parents)
        self.parents = list(parents)

    def _collect(self, node: fx.Node, parents: dict[fx.Node, None]) -> None:
        for arg in node.all_input_nodes:
            if arg in self.value_nodes:
                parents[arg] = None
            else:
                self._collect(arg, parents)

    def _evaluate(self, node: fx.Node, env: dict[fx.Node, Tensor]) -> object:
        if node in env:
            return env[node]
        if node.op == "get_attr":
            value: object = self.gm
            for part in str(node.target).split("."):
                value = getattr(value, part)
            return value
        args = fx.node.map_arg(node.args, lambda a: self._evaluate(a, env))
        kwargs = fx.node.map_arg(node.kwargs, lambda a: self._evaluate(a, env))
        if node.op == "call_module":
            return self.gm.get_submodule(str(node.target))(*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)  # type: ignore[operator]
        if node.op == "call_method":
            return getattr(args[0], str(node.target))(*args[1:], **kwargs)
        raise ValueError(f"cannot evaluate fx node {node.name} ({node.op})")

    def __call__(self, *parent_values: Tensor) -> Tensor:
        env = dict(zip(self.parents, parent_values))
        out = self._evaluate(self.node, env)
        assert isinstance(out, Tensor)
        return out


def _record_outputs(gm: fx.GraphModule, example: Sequence[Tensor]) -> dict[fx.Node, object]:
    outputs: dict[fx.Node, object] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> object:
            result = super().run_node(n)
            outputs[n] = result
            return result

    with torch.no_grad():
        Recorder(gm).run(*example)
    return outputs


def specs_from_trace(gm: fx.GraphModule, example: Sequence[Tensor]) -> TracedGraph:
    """Build node specs: inputs are roots, every tensor call site depending on them a node."""
    outputs = _record_outputs(gm, example)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    depends: set[fx.Node] = set(placeholders)
    value_nodes: set[fx.Node] = set(placeholders)
    for node in gm.graph.nodes:
        if node.op in ("call_module", "call_function", "call_method"):
            if any(a in depends for a in node.all_input_nodes):
                depends.add(node)
                out = outputs.get(node)
                if isinstance(out, Tensor) and out.is_floating_point():
                    value_nodes.add(node)
    output_node = next(n for n in gm.graph.nodes if n.op == "output")
    result = output_node.args[0]
    if not isinstance(result, fx.Node) or result not in value_nodes or result in placeholders:
        raise TypeError(
            "PCNetwork.from_module needs a module whose forward returns one floating tensor "
            "computed from its inputs"
        )
    specs: list[NodeSpec] = []
    for node in gm.graph.nodes:
        if node not in value_nodes:
            continue
        shape = tuple(outputs[node].shape[1:])  # type: ignore[union-attr]
        if node.op == "placeholder":
            specs.append(NodeSpec(node.name, shape=shape, about="input"))
            continue
        program = _NodeProgram(gm, node, value_nodes)
        specs.append(
            NodeSpec(
                node.name,
                parents=tuple(p.name for p in program.parents),
                predict=program,
                shape=shape,
                about=_about(node),
            )
        )
    return TracedGraph(specs, [p.name for p in placeholders], result.name)
