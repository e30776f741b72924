"""Shared data for the memory tests: scikit-learn's 8x8 digits in [0, 1]."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def digits() -> torch.Tensor:
    """All 1797 digits as (1797, 64) float32 rows in [0, 1]."""
    from sklearn.datasets import load_digits

    return torch.tensor(load_digits().data / 16.0, dtype=torch.float32)
