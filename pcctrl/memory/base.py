"""The interface every associative memory shares: ``store``, ``recall``, ``capacity_curve``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..errors import DTypeError, InvalidArgumentError, NonFiniteError, ShapeError

if TYPE_CHECKING:
    from .capacity import CapacityCurve


def as_rows(value: Any, name: str, width: int | None, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, bool]:
    """``value`` as a float tensor of shape ``(rows, width)``; also whether it came without a batch dim."""
    if isinstance(value, Tensor):
        tensor = value
    else:
        try:
            tensor = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InvalidArgumentError(name, f"cannot be read as an array: {exc}") from exc
    if tensor.is_complex() or not (tensor.is_floating_point() or tensor.dtype in (torch.bool, torch.int8, torch.int16,
                                                                             torch.int32, torch.int64, torch.uint8)):
        raise DTypeError(name, f"needs real numbers, got dtype {tensor.dtype}")
    single = tensor.ndim == 1
    if single:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 2:
        raise ShapeError(name, f"expected shape (width,) or (rows, width), got {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise ShapeError(name, "is empty (no rows)")
    if width is not None and tensor.shape[1] != width:
        raise ShapeError(name, f"rows must have width {width} (the stored patterns' width), got {tensor.shape[1]}")
    if tensor.shape[1] == 0:
        raise ShapeError(name, "rows have width 0")
    return tensor.to(device=device, dtype=dtype), single


class AssociativeMemory(ABC):
    """A memory that stores patterns (rows) and recalls whole patterns from partial or noisy cues.

    ``store(patterns)`` replaces the memory's content with ``patterns`` (``(N, d)``, finite).
    ``recall(cue)`` takes ``(B, d)`` (or ``(d,)``) cues in which NaN marks an unknown entry and
    returns completed patterns of the same shape, known entries as given. ``denoise(cue)``
    treats every entry as possibly wrong. Any rejected call leaves the memory as it was.
    """

    def __init__(self, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> None:
        if dtype not in (torch.float32, torch.float64):
            raise DTypeError("dtype", f"must be torch.float32 or torch.float64, got {dtype}")
        self.dtype = dtype
        self.device = torch.device(device)
        self._patterns: Tensor | None = None

    @property
    def patterns(self) -> Tensor:
        """The stored patterns ``(N, d)``; raises if nothing is stored."""
        if self._patterns is None:
            raise InvalidArgumentError("memory", "is empty: call store(patterns) first")
        return self._patterns

    @property
    def width(self) -> int | None:
        """Pattern width ``d`` (``None`` while empty)."""
        return None if self._patterns is None else self._patterns.shape[1]

    def __len__(self) -> int:
        return 0 if self._patterns is None else self._patterns.shape[0]

    def check_patterns(self, patterns: Any) -> Tensor:
        """Validated patterns to store: ``(N, d)``, finite, in the memory's dtype and device."""
        tensor, _ = as_rows(patterns, "patterns", None, self.dtype, self.device)
        if not bool(torch.isfinite(tensor).all()):
            raise NonFiniteError("patterns: stored patterns must be finite (NaN or inf found); the memory is unchanged")
        return tensor

    def check_cue(self, cue: Any) -> tuple[Tensor, Tensor, bool]:
        """Validated cue: ``(values with unknowns zeroed, known mask, unbatched?)``."""
        width = self.patterns.shape[1]
        tensor, single = as_rows(cue, "cue", width, self.dtype, self.device)
        if bool(torch.isinf(tensor).any()):
            raise NonFiniteError("cue: contains inf; mark unknown entries with NaN")
        known = ~torch.isnan(tensor)
        empty = ~known.any(dim=1)
        if bool(empty.any()):
            rows = empty.nonzero().flatten().tolist()[:5]
            raise InvalidArgumentError("cue", f"row(s) {rows} are all NaN: nothing to recall from")
        return torch.where(known, tensor, torch.zeros((), dtype=tensor.dtype, device=tensor.device)), known, single

    @abstractmethod
    def store(self, patterns: Any) -> AssociativeMemory:
        """Replace the memory's content with ``patterns`` (``(N, d)``); returns ``self``."""

    @abstractmethod
    def recall(self, cue: Any) -> Tensor:
        """Completed patterns for ``cue`` (NaN = unknown); same shape as ``cue``."""

    @abstractmethod
    def denoise(self, cue: Any) -> Tensor:
        """Patterns recalled from noisy cues (every given entry may be wrong); same shape as ``cue``."""

    def capacity_curve(
        self,
        patterns: Any,
        sizes: Sequence[int],
        *,
        corruption: str = "mask",
        level: float = 0.5,
        threshold: float | None = None,
        trials: int = 1,
        seed: int = 0,
    ) -> CapacityCurve:
        """Fraction of stored patterns retrieved as ``N`` grows; see :func:`pcctrl.memory.capacity_curve`."""
        from .capacity import capacity_curve

        return capacity_curve(self, patterns, sizes, corruption=corruption, level=level, threshold=threshold,
                              trials=trials, seed=seed)
