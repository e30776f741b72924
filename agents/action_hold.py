"""``ActionHold``: each planned action is applied for ``repeat`` env steps (action repeat)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pcctrl.errors import ShapeError


class ActionHold:
    """Per env row, the action being held and how many more env steps it is held for.

    ``due(starts)`` tells which rows need a fresh action now (their hold ran out, or their
    episode starts); ``hold(rows, actions)`` starts holding those; ``take()`` returns every row's
    current action and counts one env step. The row count follows the batch it is given.
    """

    def __init__(self, repeat: int, action_dim: int, dtype: np.dtype | type = np.float32) -> None:
        self.repeat, self.action_dim, self.dtype = int(repeat), int(action_dim), np.dtype(dtype)
        self.actions = np.zeros((0, self.action_dim), dtype=self.dtype)
        self.left = np.zeros(0, dtype=np.int64)

    def due(self, starts: np.ndarray) -> np.ndarray:
        """Boolean ``(E,)``: rows that must plan now; a new row count starts every row afresh."""
        starts = np.asarray(starts, dtype=bool).reshape(-1)
        if self.actions.shape[0] != starts.shape[0]:
            self.actions = np.zeros((starts.shape[0], self.action_dim), dtype=self.dtype)
            self.left = np.zeros(starts.shape[0], dtype=np.int64)
        return starts | (self.left <= 0)

    def hold(self, rows: np.ndarray, actions: np.ndarray) -> None:
        """Start holding ``actions`` ``(rows.sum(), action_dim)`` on the boolean ``rows``."""
        actions = np.asarray(actions)
        if actions.shape != (int(rows.sum()), self.action_dim):
            raise ShapeError("actions", f"expected ({int(rows.sum())}, {self.action_dim}), got {actions.shape}")
        self.actions[rows] = actions
        self.left[rows] = self.repeat

    def take(self) -> np.ndarray:
        """Every row's action for this env step (a copy); one step of each hold is used up."""
        self.left -= 1
        return self.actions.copy()

    def state_dict(self) -> dict[str, Tensor]:
        """Held actions and steps left, as tensors (for checkpoints)."""
        return {"actions": torch.as_tensor(self.actions), "left": torch.as_tensor(self.left)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore :meth:`state_dict`."""
        self.actions = state["actions"].cpu().numpy().astype(self.dtype)
        self.left = state["left"].cpu().numpy().astype(np.int64)
