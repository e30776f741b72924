"""capacity_curve, corrupt and retrieved against hand counts."""

from __future__ import annotations

import pytest
import torch

from pcctrl.errors import InvalidArgumentError
from pcctrl.memory import HopfieldMemory, capacity_curve, corrupt, retrieved


def test_mask_hides_exactly_the_level_and_noise_has_the_std() -> None:
    patterns = torch.rand(200, 64, generator=torch.Generator().manual_seed(0))
    cue = corrupt(patterns, "mask", 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(torch.isnan(cue).sum(1), torch.full((200,), 32))
    assert torch.equal(cue[~torch.isnan(cue)], patterns[~torch.isnan(cue)])
    noisy = corrupt(patterns, "noise", 0.3, torch.Generator().manual_seed(2))
    assert abs(float((noisy - patterns).std()) - 0.3) < 0.01


def test_curve_counts_like_a_hand_loop(digits: torch.Tensor) -> None:
    memory = HopfieldMemory("dot", "softmax", beta=4.0)
    curve = capacity_curve(memory, digits, [20, 60], corruption="noise", level=0.4, threshold=2.0, seed=7)
    g = torch.Generator().manual_seed(7)
    for n, fraction in zip([20, 60], curve.fraction):
        chosen = digits[torch.randperm(len(digits), generator=g)[:n]]
        cue = chosen + 0.4 * torch.randn(chosen.shape, generator=g)
        X = chosen.T
        out = torch.stack([X @ torch.softmax(4.0 * X.T @ q, 0) for q in cue])
        assert fraction == pytest.approx(float(((out - chosen).square().sum(1) < 2.0).float().mean()))
    assert curve.threshold == 2.0 and curve.sizes == (20, 60)
    assert retrieved(torch.zeros(2, 3), torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.5]]), 0.5).tolist() == [False, True]


def test_default_threshold_scales_the_papers_with_width(digits: torch.Tensor) -> None:
    curve = capacity_curve(HopfieldMemory("manhattan", "max"), digits, [10])
    assert curve.threshold == pytest.approx(50.0 / 3072.0 * 64)


@pytest.mark.parametrize("kwargs", [{"sizes": [0]}, {"sizes": [5000]}, {"sizes": []}, {"sizes": [10], "trials": 0},
                                    {"sizes": [10], "corruption": "blur"}, {"sizes": [10], "level": 1.0},
                                    {"sizes": [10], "threshold": 0.0}])
def test_bad_arguments(digits: torch.Tensor, kwargs: dict) -> None:
    with pytest.raises(InvalidArgumentError):
        capacity_curve(HopfieldMemory(), digits, **kwargs)
