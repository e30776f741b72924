"""HopfieldMemory against hand-computed classical, modern and SDM updates and the UHN paper's orderings."""

from __future__ import annotations

import pytest
import torch

from pcctrl.memory import HopfieldMemory, capacity_curve, similarity_scores


def _binary(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(n, d, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0).double()


def test_dot_identity_is_the_classical_hopfield_update_by_hand() -> None:
    patterns = _binary(5, 40, 0)
    cue = _binary(3, 40, 1)
    weights = torch.zeros(40, 40, dtype=torch.float64)
    for m in patterns:  # Hebbian outer products, one pattern at a time
        for i in range(40):
            for j in range(40):
                weights[i, j] += m[i] * m[j]
    field = torch.stack([torch.stack([sum(weights[i, j] * q[j] for j in range(40)) for i in range(40)])
                         for q in cue])
    linear = HopfieldMemory("dot", "identity", normalize=False, dtype=torch.float64).store(patterns)
    torch.testing.assert_close(linear.denoise(cue), field, rtol=1e-12, atol=1e-12)
    for i in range(40):
        weights[i, i] = 0.0  # Hopfield (1982): no self-connections
    field = torch.stack([torch.stack([sum(weights[i, j] * q[j] for j in range(40)) for i in range(40)])
                         for q in cue])
    classical = HopfieldMemory.classical(dtype=torch.float64).store(patterns)
    assert torch.equal(classical.denoise(cue), torch.where(field >= 0, 1.0, -1.0).double())


def test_classical_iterates_to_a_stored_pattern_from_a_few_flips() -> None:
    patterns = _binary(3, 100, 2)
    cue = patterns.clone()
    cue[:, :10] *= -1  # 10 % of the bits flipped
    memory = HopfieldMemory.classical(steps=5, dtype=torch.float64).store(patterns)
    assert torch.equal(memory.denoise(cue), patterns)


def test_softmax_is_the_modern_hopfield_update() -> None:
    g = torch.Generator().manual_seed(3)
    X = torch.randn(20, 7, generator=g, dtype=torch.float64)  # d x N: patterns as columns
    q = torch.randn(20, generator=g, dtype=torch.float64)
    beta = 0.7
    expected = X @ torch.softmax(beta * X.T @ q, dim=0)
    memory = HopfieldMemory.modern(beta=beta, dtype=torch.float64).store(X.T)
    torch.testing.assert_close(memory.denoise(q), expected, rtol=1e-12, atol=1e-12)


def test_masked_similarities_by_hand() -> None:
    g = torch.Generator().manual_seed(4)
    memory = torch.randn(6, 9, generator=g, dtype=torch.float64)
    cue = torch.randn(4, 9, generator=g, dtype=torch.float64)
    known = torch.rand(4, 9, generator=g) < 0.6
    known[:, 0] = True
    zeroed = torch.where(known, cue, 0.0)
    for kind in ("dot", "euclidean", "manhattan"):
        got = similarity_scores(memory, zeroed, known, kind)
        for b in range(4):
            k = known[b]
            diff = memory[:, k] - cue[b, k]
            want = {"dot": memory[:, k] @ cue[b, k], "euclidean": -diff.norm(dim=1),
                    "manhattan": -diff.abs().sum(1)}[kind]
            torch.testing.assert_close(got[b], want, rtol=1e-10, atol=1e-10)


def test_recall_keeps_known_entries_and_fills_the_rest_from_the_nearest_pattern(digits: torch.Tensor) -> None:
    stored = digits[:50]
    cue = stored.clone()
    cue[:, 32:] = float("nan")
    out = HopfieldMemory("manhattan", "max").store(stored).recall(cue)
    assert torch.equal(out[:, :32], stored[:, :32])
    nearest = (stored[:, None, :32] - stored[None, :, :32]).abs().sum(-1).argmin(1)
    assert torch.equal(out[:, 32:], stored[nearest, 32:])


def test_sdm_threshold_by_hand() -> None:
    patterns = torch.where(torch.rand(30, 50, generator=torch.Generator().manual_seed(5)) < 0.5, 0.0, 1.0)
    cue = patterns[:4].clone()
    cue[:, :6] = 1 - cue[:, :6]
    radius = 18.0
    out = HopfieldMemory.sdm(radius).store(patterns).denoise(cue)
    for b in range(4):
        hamming = (patterns != cue[b]).sum(1)
        inside = hamming <= radius
        torch.testing.assert_close(out[b], patterns[inside].mean(0))


def test_batched_equals_one_at_a_time(digits: torch.Tensor) -> None:
    cue = digits[:8].clone()
    cue[::2, ::3] = float("nan")
    memory = HopfieldMemory("euclidean", "softmax", beta=5.0).store(digits[:200])
    batched = memory.recall(cue)
    for row, out in zip(cue, batched):
        torch.testing.assert_close(memory.recall(row), out)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(digits: torch.Tensor) -> None:
    cue = digits[:64].clone()
    cue[:, 32:] = float("nan")
    for similarity in ("dot", "euclidean", "manhattan"):
        cpu = HopfieldMemory(similarity, "softmax", beta=3.0).store(digits[:500]).recall(cue)
        gpu = HopfieldMemory(similarity, "softmax", beta=3.0, device="cuda").store(digits[:500]).recall(cue)
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)


def test_manhattan_beats_dot_on_digits_at_the_same_n(digits: torch.Tensor) -> None:
    # The UHN paper's qualitative result, measured: same N, same separation, half-masked cues.
    for separation, beta in (("softmax", 10.0), ("max", 1.0)):
        dot = capacity_curve(HopfieldMemory("dot", separation, beta=beta), digits, [100, 300],
                             corruption="mask", level=0.5)
        l1 = capacity_curve(HopfieldMemory("manhattan", separation, beta=beta), digits, [100, 300],
                             corruption="mask", level=0.5)
        assert all(m > d + 0.1 for m, d in zip(l1.fraction, dot.fraction)), (separation, l1, dot)


def test_max_and_softmax_beat_identity_separation_on_digits(digits: torch.Tensor) -> None:
    identity = capacity_curve(HopfieldMemory("euclidean", "identity"), digits, [100], corruption="noise",
                              level=0.2).fraction[0]
    for separation in ("max", "softmax"):
        sharp = capacity_curve(HopfieldMemory("euclidean", separation, beta=10.0), digits, [100],
                               corruption="noise", level=0.2)
        assert sharp.fraction[0] > identity + 0.5


def test_polynomial_weights_by_hand_and_without_overflow() -> None:
    g = torch.Generator().manual_seed(6)
    patterns = torch.randn(5, 30, generator=g) * 30.0  # dot similarities in the thousands
    cue = torch.randn(2, 30, generator=g) * 30.0
    memory = HopfieldMemory("dot", "polynomial", beta=40.0).store(patterns)
    scores = (cue.double() @ patterns.double().T)
    raw = (scores - scores.min(1, keepdim=True).values) ** 40  # float64 holds these
    expected = (raw / raw.sum(1, keepdim=True)) @ patterns.double()
    out = memory.denoise(cue)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-3)
