"""The ``Planner`` protocol: what the agent and the runtime ask of a planner."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Planner(Protocol):
    """Batched planning on tensors: ``plan(features (E, d), rows=None) -> actions (E, a)``.

    ``features`` holds what each of ``E`` environments is planned on (an observation or the
    features of a belief). With a boolean ``rows (E,)`` only those environments are planned and
    ``(rows.sum(), a)`` actions come back; the others keep their warm start. ``reset(rows)``
    forgets the warm start (of every environment, or of ``rows``).
    :class:`~pcctrl.control.EFEPlanner` is one; numpy adapters live at the runtime's edge only.
    """

    def plan(self, features: Tensor, rows: Tensor | None = None) -> Tensor:
        """The next action of each (selected) environment."""

    def reset(self, rows: Tensor | None = None) -> None:
        """Forget the warm start."""
