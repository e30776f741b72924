"""``HopfieldMemory``: the Universal Hopfield Network, ``recall = P sep(sim(M, q))`` (Millidge et al. 2022)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from ..errors import InvalidArgumentError
from .base import AssociativeMemory

Similarity = Literal["dot", "euclidean", "manhattan"]
Separation = Literal["identity", "softmax", "polynomial", "max", "threshold"]
Output = Literal["linear", "sign"]
_SIMILARITIES = ("dot", "euclidean", "manhattan")
_SEPARATIONS = ("identity", "softmax", "polynomial", "max", "threshold")
_CHUNK = 2**24  # entries of the (cues, patterns, width) block for Manhattan distances


def similarity_scores(memory: Tensor, cue: Tensor, known: Tensor, kind: Similarity) -> Tensor:
    """``(B, N)`` similarities of each cue to each stored row over the cue's known entries.

    ``dot``: ``M q``; ``euclidean``: minus the Euclidean distance; ``manhattan``: minus the
    L1 distance (on binary patterns, minus the Hamming distance).
    """
    if kind == "dot":
        return cue @ memory.T
    if kind == "euclidean":
        mask = known.to(cue.dtype)
        squared = mask @ memory.square().T - 2.0 * cue @ memory.T + cue.square().sum(1, keepdim=True)
        return -squared.clamp_min(0.0).sqrt()
    rows = max(1, _CHUNK // max(1, memory.numel()))
    parts = []
    for start in range(0, cue.shape[0], rows):
        q, m = cue[start:start + rows], known[start:start + rows]
        diff = (q.unsqueeze(1) - memory.unsqueeze(0)).abs() * m.unsqueeze(1)
        parts.append(-diff.sum(-1))
    return torch.cat(parts)


def separate(scores: Tensor, kind: Separation, beta: float, normalize: bool) -> Tensor:
    """``(B, N)`` weights of the stored rows from their similarity scores."""
    if kind == "identity":
        weights = scores
    elif kind == "softmax":
        return torch.softmax(beta * scores, dim=1)
    elif kind == "max":
        return torch.nn.functional.one_hot(scores.argmax(1), scores.shape[1]).to(scores.dtype)
    elif kind == "polynomial":
        # Shifted so the least similar row gets weight 0 and every weight is >= 0 for any similarity;
        # when normalising, also scaled to [0, 1] first so that high degrees cannot overflow.
        shifted = scores - scores.amin(1, keepdim=True)
        if normalize:
            shifted = shifted / shifted.amax(1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
        weights = shifted.pow(beta)
    else:
        inside = (scores >= -beta).to(scores.dtype)
        nearest = torch.nn.functional.one_hot(scores.argmax(1), scores.shape[1]).to(scores.dtype)
        weights = torch.where(inside.sum(1, keepdim=True) > 0, inside, nearest)
    if not normalize:
        return weights
    total = weights.sum(1, keepdim=True)
    tiny = torch.finfo(weights.dtype).tiny
    safe = torch.where(total.abs() > tiny, total, torch.ones_like(total))
    return weights / safe


class HopfieldMemory(AssociativeMemory):
    """A Universal Hopfield Network: similarity -> separation -> projection onto the stored rows.

    ``M^T w`` with ``w = sep(sim(M, q))`` for each cue ``q`` (batched: one matrix product per
    step), then, if ``output="sign"``, the sign; ``steps`` repeats the update from its own
    output. ``recall`` keeps the cue's known entries (completion: known entries re-clamped after
    every step); ``denoise`` returns the memory's output everywhere.

    Args:
        similarity: ``"dot"`` (``M q``), ``"euclidean"`` (minus ``|m_i - q|_2``) or
            ``"manhattan"`` (minus ``|m_i - q|_1``), computed over the known entries of ``q``.
        separation: ``"identity"``, ``"softmax"`` (``softmax(beta s)``), ``"polynomial"``
            (``(s - min s)^beta``), ``"max"`` (one-hot of the most similar row) or
            ``"threshold"`` (1 for rows within distance ``beta`` of the cue, as in Kanerva's
            sparse distributed memory; the nearest row if none is).
        beta: the separation's parameter: inverse temperature (softmax), degree (polynomial),
            radius (threshold); unused by identity and max.
        normalize: divide the weights by their sum (identity, polynomial, threshold; softmax and
            max are normalised already), so the output is a weighted average of stored rows.
        output: ``"linear"`` or ``"sign"`` (binary patterns, the classical Hopfield update).
        self_connections: with ``False`` (dot similarity, identity separation, no
            normalisation only) the update is ``W q`` with the diagonal of ``W = M^T M`` zeroed,
            as in Hopfield (1982); otherwise the full ``M^T M q`` of the UHN form.
        steps: number of updates (1: single-shot retrieval, as in the UHN paper).

    Presets: :meth:`classical`, :meth:`modern`, :meth:`sdm`. Runs on ``device`` in ``dtype``.
    """

    def __init__(
        self,
        similarity: Similarity = "dot",
        separation: Separation = "softmax",
        beta: float = 1.0,
        *,
        normalize: bool = True,
        output: Output = "linear",
        steps: int = 1,
        self_connections: bool = True,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(dtype, device)
        if similarity not in _SIMILARITIES:
            raise InvalidArgumentError("similarity", f"must be one of {_SIMILARITIES}, got {similarity!r}")
        if separation not in _SEPARATIONS:
            raise InvalidArgumentError("separation", f"must be one of {_SEPARATIONS}, got {separation!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0 or beta == float("inf"):
            raise InvalidArgumentError("beta", f"must be a finite number > 0, got {beta!r}")
        if output not in ("linear", "sign"):
            raise InvalidArgumentError("output", f"must be 'linear' or 'sign', got {output!r}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise InvalidArgumentError("steps", f"must be an integer >= 1, got {steps!r}")
        if not self_connections and (similarity, separation, normalize) != ("dot", "identity", False):
            raise InvalidArgumentError(
                "self_connections", "False needs similarity='dot', separation='identity', normalize=False"
            )
        self.self_connections = bool(self_connections)
        self.similarity: Similarity = similarity
        self.separation: Separation = separation
        self.beta = float(beta)
        self.normalize = bool(normalize)
        self.output: Output = output
        self.steps = steps

    @classmethod
    def classical(cls, steps: int = 1, **kwargs: Any) -> HopfieldMemory:
        """Classical Hopfield network (Hopfield 1982) on ±1 patterns: ``q' = sign(W q)``, ``W = sum_i
        m_i m_i^T`` with zero diagonal (no self-connections), ``steps`` synchronous updates."""
        return cls("dot", "identity", normalize=False, output="sign", steps=steps, self_connections=False, **kwargs)

    @classmethod
    def modern(cls, beta: float = 8.0, **kwargs: Any) -> HopfieldMemory:
        """Modern continuous Hopfield network (Ramsauer et al. 2021): ``q' = M^T softmax(beta M q)``."""
        return cls("dot", "softmax", beta=beta, **kwargs)

    @classmethod
    def sdm(cls, radius: float, **kwargs: Any) -> HopfieldMemory:
        """Sparse distributed memory (Kanerva 1988) in UHN form: Hamming (L1) similarity, threshold
        separation at ``radius``, stored patterns as the hard locations; mean of rows within ``radius``."""
        return cls("manhattan", "threshold", beta=radius, **kwargs)

    def __repr__(self) -> str:
        return (f"HopfieldMemory(similarity={self.similarity!r}, separation={self.separation!r}, beta={self.beta:g}, "
                f"output={self.output!r}, steps={self.steps}, stored={len(self)})")

    def store(self, patterns: Any) -> HopfieldMemory:
        """Replace the memory's content with ``patterns`` (``(N, d)`` finite); returns ``self``."""
        self._patterns = self.check_patterns(patterns)
        return self

    def weights(self, cue: Any) -> Tensor:
        """``(B, N)`` separation weights of the stored rows for ``cue`` (NaN = unknown), one step."""
        values, known, _ = self.check_cue(cue)
        scores = similarity_scores(self.patterns, values, known, self.similarity)
        return separate(scores, self.separation, self.beta, self.normalize)

    def recall(self, cue: Any) -> Tensor:
        """Completed patterns for ``cue`` (``(B, d)`` or ``(d,)``, NaN = unknown); known entries kept."""
        return self._run(cue, keep_known=True)

    def denoise(self, cue: Any) -> Tensor:
        """The memory's output for ``cue`` everywhere (noisy cues: every entry may be wrong)."""
        return self._run(cue, keep_known=False)

    @torch.no_grad()
    def _run(self, cue: Any, keep_known: bool) -> Tensor:
        values, known, single = self.check_cue(cue)
        memory = self.patterns
        state, mask = values, known
        for _ in range(self.steps):
            scores = similarity_scores(memory, state, mask, self.similarity)
            weighted = separate(scores, self.separation, self.beta, self.normalize) @ memory
            if not self.self_connections:
                weighted = weighted - memory.square().sum(0) * state
            state = weighted
            if self.output == "sign":
                state = torch.where(state >= 0, 1.0, -1.0).to(state.dtype)
            if keep_known:
                state = torch.where(known, values, state)
            mask = torch.ones_like(known)
        return state[0] if single else state
