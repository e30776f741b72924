"""The action check every pcctrl env runs before it touches its state: finite numbers of the right size."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from pcctrl.errors import DTypeError, InvalidActionError, ShapeError


def checked_action(action: Any, space: spaces.Box, name: str = "action") -> np.ndarray:
    """A float64 copy of ``action`` in ``space``'s shape; the caller's state is not touched yet.

    Raises :class:`~pcctrl.errors.InvalidActionError` for NaN, inf or non-numeric entries,
    :class:`~pcctrl.errors.DTypeError` for complex ones (casting would drop the imaginary part)
    and :class:`~pcctrl.errors.ShapeError` unless it has ``space``'s number of entries. Bounds are
    not checked here: each env applies Gymnasium's convention (clipping) itself.
    """
    if np.iscomplexobj(action):
        raise DTypeError(name, f"is complex ({action!r}); actions must be real numbers")
    try:
        a = np.array(action, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidActionError(name, f"cannot be read as numbers ({exc})") from None
    if a.size != int(np.prod(space.shape)):
        raise ShapeError(name, f"expected {int(np.prod(space.shape))} entries (shape {space.shape}), "
                               f"got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InvalidActionError(name, f"contains NaN or inf ({a.reshape(-1).tolist()}); the env's state is unchanged")
    return a.reshape(space.shape)

