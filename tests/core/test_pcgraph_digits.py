"""One PCGraph, three jobs by clamping, on scikit-learn's digits: classify, generate, recall.

The graph has a discriminative path (image -> hd -> label) and a generative path
(label -> hg -> image): a cycle. Training clamps image and label; everything else is inference.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcctrl import PCGraph, Precision

datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is in the [test] extra")

HIDDEN = 64
EPOCHS = 40


def _modules() -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    torch.manual_seed(1)
    encode, classify = nn.Linear(64, HIDDEN), nn.Sequential(nn.Tanh(), nn.Linear(HIDDEN, 10))
    torch.manual_seed(2)
    return encode, classify, nn.Linear(10, HIDDEN), nn.Sequential(nn.Tanh(), nn.Linear(HIDDEN, 64))


def _batches(indices: torch.Tensor, epoch: int) -> list[torch.Tensor]:
    order = indices[torch.randperm(len(indices), generator=torch.Generator().manual_seed(epoch))]
    return list(order.split(32))


@pytest.fixture(scope="module")
def trained() -> dict[str, object]:
    digits = datasets.load_digits()
    images = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    labels = torch.tensor(digits.target)
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    train, test = perm[:1200], perm[1200:]
    one_hot = nn.functional.one_hot(labels, 10).float()

    encode, classify, prior, generate = _modules()
    graph = PCGraph(
        {"image": 64, "hd": HIDDEN, "hg": HIDDEN, "label": 10},
        [("image", "hd", encode), ("hd", "label", classify), ("label", "hg", prior), ("hg", "image", generate)],
        precisions={"label": Precision.scalar(0.1)},
        T=20,
        x_lr=0.1,
    )
    optimizer = torch.optim.Adam(graph.parameters(), lr=2e-3)
    for epoch in range(EPOCHS):
        for batch in _batches(train, epoch):
            graph.train_step({"image": images[batch], "label": one_hot[batch]}, optimizer)

    encode_bp, classify_bp, _, _ = _modules()
    backprop = nn.Sequential(encode_bp, classify_bp)
    optimizer = torch.optim.Adam(backprop.parameters(), lr=2e-3)
    for epoch in range(EPOCHS):
        for batch in _batches(train, epoch):
            optimizer.zero_grad()
            (0.5 * (backprop(images[batch]) - one_hot[batch]).square().sum(1).mean()).backward()
            optimizer.step()
    return {"graph": graph, "backprop": backprop, "images": images, "labels": labels,
            "train": train, "test": test}


def test_classifies_within_two_points_of_backprop(trained: dict) -> None:
    graph, images, labels, test = trained["graph"], trained["images"], trained["labels"], trained["test"]
    inferred = graph.infer({"image": images[test]}, T=100).values["label"]
    accuracy = float((inferred.argmax(1) == labels[test]).float().mean())
    with torch.no_grad():
        reference = float((trained["backprop"](images[test]).argmax(1) == labels[test]).float().mean())
    assert reference > 0.9
    assert accuracy >= reference - 0.02, (accuracy, reference)


def test_generates_recognisable_digits(trained: dict) -> None:
    graph, images, labels, train = trained["graph"], trained["images"], trained["labels"], trained["train"]
    wanted = torch.arange(10).repeat(10)
    generated = graph.infer({"label": nn.functional.one_hot(wanted, 10).float()}, T=300).values["image"]
    class_means = torch.stack([images[train][labels[train] == k].mean(0) for k in range(10)])
    nearest = torch.cdist(generated, class_means).argmin(1)
    assert float((nearest == wanted).float().mean()) >= 0.8
    with torch.no_grad():
        judged = trained["backprop"](generated).argmax(1)
    assert float((judged == wanted).float().mean()) >= 0.8


def test_recalls_stored_patterns_from_half_masked_ones(trained: dict) -> None:
    graph, images, train = trained["graph"], trained["images"], trained["train"]
    stored = images[train[:200]]
    missing = torch.rand(stored.shape, generator=torch.Generator().manual_seed(3)) < 0.5
    corrupted = stored.masked_fill(missing, float("nan"))
    recalled = graph.infer({"image": corrupted}, T=1000).values["image"]
    assert torch.equal(recalled[~missing], stored[~missing])
    error = float((recalled - stored)[missing].square().mean())
    zero_fill = float(stored[missing].square().mean())
    mean_fill = float((images[train].mean(0).expand_as(stored) - stored)[missing].square().mean())
    assert error < 0.5 * zero_fill, (error, zero_fill)
    assert error < mean_fill, (error, mean_fill)
