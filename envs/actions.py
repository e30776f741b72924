"""The action check every pcctrl env runs before it touches its state: finite numbers of the right size."""

from __future__ import annotations

import math
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
    try:
        raw = np.asarray(action)
        if raw.dtype.kind == "c":
            raise DTypeError(name, f"is complex ({action!r}); actions must be real numbers")
        a = raw.astype(np.float64)  # always a copy: the caller's array is never kept
    except (TypeError, ValueError) as exc:
        if isinstance(exc, DTypeError):
            raise
        raise InvalidActionError(name, f"cannot be read as numbers ({exc})") from None
    size = math.prod(space.shape)  # np.prod costs several microseconds per step
    if a.size != size:
        raise ShapeError(name, f"expected {size} entries (shape {space.shape}), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InvalidActionError(name, f"contains NaN or inf ({a.reshape(-1).tolist()}); the env's state is unchanged")
    return a.reshape(space.shape)
