"""Exceptions raised by the PC core."""

from __future__ import annotations


class PCError(Exception):
    """Base class of pcctrl's own errors."""


class UnknownNodeError(PCError, KeyError):
    """A node name that the graph does not have."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown node {self.name!r}; the graph has nodes {self.known}"


class NodeShapeError(PCError, ValueError):
    """A value whose shape does not fit the node it is given to."""


class NonFiniteEnergyError(PCError, FloatingPointError):
    """The energy became NaN or inf during relaxation; names the offending nodes."""

    def __init__(self, nodes: list[str], step: int) -> None:
        self.nodes = nodes
        self.step = step
        super().__init__(
            f"non-finite energy at relaxation step {step} in node(s) {nodes}; "
            "lower the inference step size (x_lr) or check the inputs for huge values. "
            "Parameters were left unchanged."
        )
