"""Input policy for sensor data: non-finite entries are missing readings; a wrong shape is an error."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DTypeError, InvalidArgumentError, ShapeError


def sanitize_observation(obs: Any, size: int, name: str = "obs") -> np.ndarray:
    """A float64 copy of ``obs`` with NaN at every NaN or +-inf entry (zero precision downstream).

    Raises :class:`~pcctrl.errors.InvalidArgumentError` (``argument == name``) if ``obs`` is not
    numeric, its subclass :class:`~pcctrl.errors.ShapeError` if its shape is not ``(size,)`` (an
    empty reading included), and :class:`~pcctrl.errors.DTypeError` if it is complex
    (casting would silently drop the imaginary part). The caller's array is never modified.
    """
    if np.iscomplexobj(obs):
        raise DTypeError(name, "is complex; readings must be real numbers")
    try:
        y = np.array(obs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"cannot be read as numbers ({exc})") from exc
    if y.shape != (size,):
        raise ShapeError(name, f"expected shape ({size},), got {y.shape}")
    if not np.isfinite(y.sum()):
        y[~np.isfinite(y)] = np.nan
    return y
