"""Errors raised for bad model or filter arguments."""

from __future__ import annotations

from ..core.errors import PCError


class InvalidArgumentError(PCError, ValueError):
    """An argument with a wrong shape, dtype or value; ``argument`` names it."""

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        super().__init__(f"{argument}: {message}")


class NotPositiveDefiniteError(InvalidArgumentError):
    """A covariance or precision that is not symmetric positive (semi-)definite."""


class NonFiniteBeliefError(PCError, FloatingPointError):
    """A filter step produced a NaN or inf belief; the previous belief is kept."""
