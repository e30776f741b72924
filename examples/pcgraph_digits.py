"""One PCGraph, three jobs by clamping, on scikit-learn's 8x8 digits: classify, generate, recall.

The graph has a discriminative path (image -> hd -> label) and a generative path
(label -> hg -> image), closing a cycle. Training clamps image and label; everything else is
inference. The reference is the discriminative path's two modules trained by backprop on the
same energy (1/2 squared error to one-hot labels). Run: ``python examples/pcgraph_digits.py``
(needs scikit-learn: ``pip install -e ".[test]"``; about a minute on 2 cores).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pcctrl import PCGraph, Precision

HIDDEN = 64


@dataclass
class Digits:
    """Images in [0, 1] (flattened 8x8), labels, and a fixed train/test split."""

    images: torch.Tensor
    labels: torch.Tensor
    train: torch.Tensor
    test: torch.Tensor


def load(seed: int = 0) -> Digits:
    """scikit-learn's digits with a seeded 1200/597 split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    perm = torch.randperm(len(digits.target), generator=torch.Generator().manual_seed(seed))
    return Digits(torch.tensor(digits.data / 16.0, dtype=torch.float32), torch.tensor(digits.target),
                  perm[:1200], perm[1200:])


def _modules() -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    torch.manual_seed(1)
    encode, classify = nn.Linear(64, HIDDEN), nn.Sequential(nn.Tanh(), nn.Linear(HIDDEN, 10))
    torch.manual_seed(2)
    return encode, classify, nn.Linear(10, HIDDEN), nn.Sequential(nn.Tanh(), nn.Linear(HIDDEN, 64))


def _batches(indices: torch.Tensor, epoch: int) -> list[torch.Tensor]:
    order = indices[torch.randperm(len(indices), generator=torch.Generator().manual_seed(epoch))]
    return list(order.split(32))


def train_graph(data: Digits, epochs: int = 40) -> PCGraph:
    """The cyclic PC graph trained by inference learning with image and label clamped."""
    encode, classify, prior, generate = _modules()
    graph = PCGraph(
        {"image": 64, "hd": HIDDEN, "hg": HIDDEN, "label": 10},
        [("image", "hd", encode), ("hd", "label", classify), ("label", "hg", prior), ("hg", "image", generate)],
        precisions={"label": Precision.scalar(0.1)},
        T=20,
        x_lr=0.1,
    )
    one_hot = nn.functional.one_hot(data.labels, 10).float()
    optimizer = torch.optim.Adam(graph.parameters(), lr=2e-3)
    for epoch in range(epochs):
        for batch in _batches(data.train, epoch):
            graph.train_step({"image": data.images[batch], "label": one_hot[batch]}, optimizer)
    return graph


def train_backprop(data: Digits, epochs: int = 40) -> nn.Module:
    """The graph's discriminative path as a feed-forward net, trained by backprop."""
    encode, classify, _, _ = _modules()
    net = nn.Sequential(encode, classify)
    one_hot = nn.functional.one_hot(data.labels, 10).float()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    for epoch in range(epochs):
        for batch in _batches(data.train, epoch):
            optimizer.zero_grad()
            (0.5 * (net(data.images[batch]) - one_hot[batch]).square().sum(1).mean()).backward()
            optimizer.step()
    return net


def classify(graph: PCGraph, data: Digits) -> float:
    """Test accuracy with the image clamped and the label inferred."""
    label = graph.infer({"image": data.images[data.test]}, T=100).values["label"]
    return float((label.argmax(1) == data.labels[data.test]).float().mean())


def generate(graph: PCGraph, per_class: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Images generated with each label clamped: (wanted labels, images)."""
    wanted = torch.arange(10).repeat(per_class)
    images = graph.infer({"label": nn.functional.one_hot(wanted, 10).float()}, T=300).values["image"]
    return wanted, images


def recall(graph: PCGraph, data: Digits, count: int = 200, seed: int = 3) -> dict[str, float]:
    """Stored (training) images with half their pixels missing (NaN): recall error vs baselines."""
    stored = data.images[data.train[:count]]
    missing = torch.rand(stored.shape, generator=torch.Generator().manual_seed(seed)) < 0.5
    recalled = graph.infer({"image": stored.masked_fill(missing, float("nan"))}, T=1000).values["image"]
    mean_image = data.images[data.train].mean(0).expand_as(stored)
    return {
        "recall": float((recalled - stored)[missing].square().mean()),
        "zero fill": float(stored[missing].square().mean()),
        "mean fill": float((mean_image - stored)[missing].square().mean()),
        "observed kept": float(torch.equal(recalled[~missing], stored[~missing])),
    }


def main() -> None:
    torch.set_num_threads(1)
    data = load()
    graph = train_graph(data)
    reference = train_backprop(data)
    with torch.no_grad():
        bp_accuracy = float((reference(data.images[data.test]).argmax(1) == data.labels[data.test]).float().mean())
    wanted, images = generate(graph)
    class_means = torch.stack([data.images[data.train][data.labels[data.train] == k].mean(0) for k in range(10)])
    nearest = float((torch.cdist(images, class_means).argmin(1) == wanted).float().mean())
    with torch.no_grad():
        judged = float((reference(images).argmax(1) == wanted).float().mean())
    print(f"classify: PC graph {classify(graph, data):.3f}, same path by backprop {bp_accuracy:.3f}")
    print(f"generate: nearest class mean agrees {nearest:.2f}, backprop classifier agrees {judged:.2f}")
    print("recall (MSE on missing pixels): " + ", ".join(f"{k} {v:.4f}" for k, v in recall(graph, data).items()))


if __name__ == "__main__":
    main()
