"""``GoalPrior``: a Gaussian preference over observations, ``log p~(o) = -1/2 |o - goal|^2_Pi``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import InvalidArgumentError


class GoalPrior(nn.Module):
    """Prior preference over the next observation (and optionally a control-cost prior).

    ``log p~(o', a) = -1/2 (o' - goal)^T Pi (o' - goal) - 1/2 action_precision |a|^2`` (constants
    dropped). ``precision`` is a number, a vector (diagonal) or a symmetric positive-definite
    matrix. Use it in place of a reward when the task is "reach/hold this observation".
    """

    def __init__(self, goal: Tensor | Sequence[float], precision: Tensor | Sequence[float] | float = 1.0,
                 action_precision: float = 0.0) -> None:
        super().__init__()
        goal_t = torch.as_tensor(goal, dtype=torch.float32).reshape(-1)
        prec = torch.as_tensor(precision, dtype=torch.float32)
        size = goal_t.numel()
        if size < 1 or not bool(torch.isfinite(goal_t).all()):
            raise InvalidArgumentError("goal", "must be a non-empty finite vector")
        if prec.ndim == 0:
            prec = prec * torch.eye(size)
        elif prec.ndim == 1:
            if prec.numel() != size:
                raise InvalidArgumentError("precision", f"a diagonal precision needs {size} entries, "
                                                        f"got {prec.numel()}")
            prec = torch.diag(prec)
        if prec.shape != (size, size):
            raise InvalidArgumentError("precision",
                                       f"must be a number, a length-{size} vector or a {size}x{size} matrix")
        if not bool(torch.allclose(prec, prec.T)) or bool((torch.linalg.eigvalsh(prec) < 0).any()):
            raise InvalidArgumentError("precision", "must be symmetric positive semi-definite")
        if action_precision < 0:
            raise InvalidArgumentError("action_precision", f"must be non-negative, got {action_precision}")
        self.register_buffer("goal", goal_t)
        self.register_buffer("precision", prec)
        self.action_precision = float(action_precision)

    def log_preference(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Log preference of each transition, shape ``next_obs.shape[:-1]``."""
        if next_obs.shape[-1] != self.goal.numel():
            raise InvalidArgumentError("next_obs", f"observations have {next_obs.shape[-1]} entries, "
                                                   f"the goal has {self.goal.numel()}")
        err = next_obs - self.goal
        value = -0.5 * ((err @ self.precision) * err).sum(-1)
        if self.action_precision:
            value = value - 0.5 * self.action_precision * action.square().sum(-1)
        return value

    def terminated(self, next_obs: Tensor) -> Tensor | None:
        """A goal prior never ends an episode."""
        return None
