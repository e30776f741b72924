"""pcctrl's one exception family.

Every error pcctrl raises on purpose derives from :class:`PCError` and also from the builtin
that matches its meaning, so ``except ValueError`` or ``except FloatingPointError`` written
against an older pcctrl keeps working. The table in ``docs/reliability.md`` lists which public
entry point raises which, and what state it leaves behind.

This module imports nothing from pcctrl: every layer may use it.
"""

from __future__ import annotations

from pathlib import Path


class PCError(Exception):
    """Base class of pcctrl's own errors."""


class InvalidArgumentError(PCError, ValueError):
    """An argument with a wrong shape, dtype or value; ``argument`` names it."""

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        super().__init__(f"{argument}: {message}")


class ShapeError(InvalidArgumentError):
    """An array or tensor whose shape (or batch size, including an empty batch) does not fit."""


class DTypeError(InvalidArgumentError):
    """An array or tensor of a dtype pcctrl refuses (complex, integer where floats are needed)."""


class NotPositiveDefiniteError(InvalidArgumentError):
    """A covariance or precision that is not symmetric positive (semi-)definite."""


class InvalidActionError(InvalidArgumentError):
    """An action an environment or controller refuses (NaN or inf); the state is unchanged."""


class NodeShapeError(PCError, ValueError):
    """A value whose shape does not fit the PC-graph node it is given to."""


class UnknownNodeError(PCError, KeyError):
    """A node name that the graph does not have."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown node {self.name!r}; the graph has nodes {self.known}"


class NonFiniteError(PCError, FloatingPointError):
    """A computation produced NaN or inf; the state before it is kept."""


class NonFiniteEnergyError(NonFiniteError):
    """The energy became NaN or inf during relaxation; names the offending nodes."""

    def __init__(self, nodes: list[str], step: int) -> None:
        self.nodes = nodes
        self.step = step
        super().__init__(
            f"non-finite energy at relaxation step {step} in node(s) {nodes}; "
            "lower the inference step size (x_lr) or check the inputs for huge values. "
            "Parameters were left unchanged."
        )


class NonFiniteBeliefError(NonFiniteError):
    """A filter step produced a NaN or inf belief; the previous belief is kept."""


class DivergenceError(PCError, FloatingPointError):
    """Relaxation, learning or a filter iteration is diverging (still finite, growing past a
    documented bound); raised before any parameter or belief changes."""


class NotReadyError(PCError, RuntimeError):
    """An object used before it is ready: ``step`` before ``reset``, a graph used before it is
    built, a model queried before it is fitted. Nothing changes; call the named method first."""


class CheckpointError(PCError, ValueError):
    """A checkpoint file that cannot be loaded: missing, empty, truncated, corrupt, tampered
    with, of another kind, or of an old format. ``path`` names the file; the object being
    loaded into is unchanged."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


__all__ = [
    "CheckpointError",
    "DTypeError",
    "DivergenceError",
    "InvalidActionError",
    "InvalidArgumentError",
    "NodeShapeError",
    "NonFiniteBeliefError",
    "NonFiniteEnergyError",
    "NonFiniteError",
    "NotPositiveDefiniteError",
    "NotReadyError",
    "PCError",
    "ShapeError",
    "UnknownNodeError",
]
