"""Capacity curves: the fraction of stored patterns a memory retrieves from corrupted cues as N grows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from .base import AssociativeMemory

Corruption = Literal["mask", "noise"]
PAPER_THRESHOLD_PER_ENTRY = 50.0 / 3072.0


def corrupt(patterns: Tensor, corruption: Corruption, level: float, generator: torch.Generator) -> Tensor:
    """Cues from ``patterns``: ``"mask"`` sets a random ``level`` fraction of each row to NaN
    (exactly ``round(level * d)`` entries, at least one kept); ``"noise"`` adds N(0, level^2)."""
    if corruption == "mask":
        if not 0 <= level < 1:
            raise InvalidArgumentError("level", f"a mask fraction must lie in [0, 1), got {level!r}")
        n, d = patterns.shape
        hidden = min(d - 1, round(level * d))
        ranks = torch.rand(n, d, generator=generator).argsort(1).argsort(1).to(patterns.device)
        return patterns.masked_fill(ranks < hidden, float("nan"))
    if corruption == "noise":
        if not level >= 0:
            raise InvalidArgumentError("level", f"a noise std must be >= 0, got {level!r}")
        noise = torch.randn(patterns.shape, generator=generator, dtype=patterns.dtype).to(patterns.device)
        return patterns + level * noise
    raise InvalidArgumentError("corruption", f"must be 'mask' or 'noise', got {corruption!r}")


def retrieved(recalled: Tensor, originals: Tensor, threshold: float) -> Tensor:
    """Per row: whether the sum of squared differences to the original is below ``threshold``."""
    return (recalled - originals).square().sum(-1) < threshold


@dataclass(frozen=True)
class CapacityCurve:
    """Retrieval fraction (and mean per-entry squared error) for each number of stored patterns."""

    sizes: tuple[int, ...]
    fraction: tuple[float, ...]
    mse: tuple[float, ...]
    corruption: str
    level: float
    threshold: float


def capacity_curve(
    memory: AssociativeMemory,
    patterns: Any,
    sizes: Sequence[int],
    *,
    corruption: Corruption = "mask",
    level: float = 0.5,
    threshold: float | None = None,
    trials: int = 1,
    seed: int = 0,
) -> CapacityCurve:
    """For each ``N`` in ``sizes``: store ``N`` rows drawn from ``patterns`` (without replacement),
    recall each from a corrupted cue, and count it retrieved if its squared error (summed over
    entries) is below ``threshold`` (the UHN paper's criterion). The default threshold,
    ``50 / 3072`` per entry times the width, is the paper's 50 on CIFAR-10's 3072 entries scaled
    to the pattern width (1.04 for 8x8 digits). Averaged over ``trials`` draws.

    Masked cues go through ``memory.recall``, noisy ones through ``memory.denoise``. The memory
    is left storing the last draw.
    """
    pool = memory.check_patterns(patterns)
    checked = []
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= pool.shape[0]:
            raise InvalidArgumentError("sizes", f"each size must be an integer in [1, {pool.shape[0]}], got {n!r}")
        checked.append(n)
    if not checked:
        raise InvalidArgumentError("sizes", "needs at least one size")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise InvalidArgumentError("trials", f"must be an integer >= 1, got {trials!r}")
    threshold = PAPER_THRESHOLD_PER_ENTRY * pool.shape[1] if threshold is None else threshold
    if not threshold > 0:
        raise InvalidArgumentError("threshold", f"must be > 0, got {threshold!r}")
    generator = torch.Generator().manual_seed(seed)
    fractions, errors = [], []
    for n in checked:
        hits, mse = 0.0, 0.0
        for _ in range(trials):
            chosen = pool[torch.randperm(pool.shape[0], generator=generator)[:n].to(pool.device)]
            cue = corrupt(chosen, corruption, level, generator)
            memory.store(chosen)
            out = memory.denoise(cue) if corruption == "noise" else memory.recall(cue)
            hits += float(retrieved(out, chosen, threshold).float().mean())
            mse += float((out - chosen).square().mean())
        fractions.append(hits / trials)
        errors.append(mse / trials)
    return CapacityCurve(tuple(checked), tuple(fractions), tuple(errors), corruption, float(level), float(threshold))
