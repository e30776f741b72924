"""One PCGraph, three jobs by clamping, on scikit-learn's digits (runs examples/pcgraph_digits.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

pytest.importorskip("sklearn.datasets", reason="scikit-learn is in the [test] extra")


def _example() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "examples" / "pcgraph_digits.py"
    spec = importlib.util.spec_from_file_location("pcgraph_digits", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained() -> tuple[ModuleType, object, object, torch.nn.Module]:
    example = _example()
    data = example.load()
    return example, data, example.train_graph(data), example.train_backprop(data)


def test_classifies_within_two_points_of_backprop(trained) -> None:
    example, data, graph, reference = trained
    accuracy = example.classify(graph, data)
    with torch.no_grad():
        bp = float((reference(data.images[data.test]).argmax(1) == data.labels[data.test]).float().mean())
    assert bp > 0.9
    assert accuracy >= bp - 0.02, (accuracy, bp)


def test_generates_recognisable_digits(trained) -> None:
    example, data, graph, reference = trained
    wanted, images = example.generate(graph)
    train_images, train_labels = data.images[data.train], data.labels[data.train]
    class_means = torch.stack([train_images[train_labels == k].mean(0) for k in range(10)])
    assert float((torch.cdist(images, class_means).argmin(1) == wanted).float().mean()) >= 0.8
    with torch.no_grad():
        assert float((reference(images).argmax(1) == wanted).float().mean()) >= 0.8


def test_recalls_stored_patterns_from_half_masked_ones(trained) -> None:
    example, data, graph, _ = trained
    result = example.recall(graph, data)
    assert result["observed kept"] == 1.0
    assert result["recall"] < 0.5 * result["zero fill"], result
    assert result["recall"] < result["mean fill"], result
