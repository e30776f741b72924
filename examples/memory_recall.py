"""Associative recall of 8x8 digits: half-masked and noisy cues, recalled by a PC memory and a Hopfield memory.

Stores ``--count`` scikit-learn digits in a :class:`pcctrl.memory.PCMemory` (a generative PC
network trained by PC learning) and in a Universal Hopfield Network (Manhattan similarity,
softmax separation), then recalls each from its bottom half missing (NaN) and from Gaussian
noise. Writes a PNG grid: cue, PC recall, Hopfield recall, original, for both corruptions, and
prints the mean squared error of each. Run: ``python examples/memory_recall.py [--count 20]
[--epochs 500] [--out memory_recall.png]`` (needs scikit-learn, ``pip install -e ".[test]"``).
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from pcctrl.memory import HopfieldMemory, PCMemory  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="digits stored")
    parser.add_argument("--epochs", type=int, default=500, help="PCMemory training epochs")
    parser.add_argument("--noise", type=float, default=0.3, help="std of the noisy cues")
    parser.add_argument("--shown", type=int, default=8, help="digits drawn in the grid")
    parser.add_argument("--out", default="memory_recall.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    digits = torch.tensor(load_digits().data / 16.0, dtype=torch.float32)
    stored = digits[torch.randperm(len(digits), generator=torch.Generator().manual_seed(args.seed))[: args.count]]
    pc = PCMemory(epochs=args.epochs, seed=args.seed).store(stored)
    hopfield = HopfieldMemory("manhattan", "softmax", beta=10.0).store(stored)

    masked = stored.clone()
    masked[:, 32:] = float("nan")  # bottom half of each 8x8 image unknown
    noisy = stored + args.noise * torch.randn(stored.shape, generator=torch.Generator().manual_seed(args.seed + 1))
    panels = {
        "half masked": (masked, pc.recall(masked), hopfield.recall(masked)),
        f"noise {args.noise:g}": (noisy, pc.denoise(noisy), hopfield.denoise(noisy)),
    }
    for name, (_, by_pc, by_hopfield) in panels.items():
        print(f"{name}: MSE PCMemory {float((by_pc - stored).square().mean()):.4f}, "
              f"Hopfield (manhattan/softmax) {float((by_hopfield - stored).square().mean()):.4f}")

    shown = min(args.shown, args.count)
    fig, axes = plt.subplots(8, shown, figsize=(1.1 * shown, 9.2), squeeze=False)
    row = 0
    for name, (cue, by_pc, by_hopfield) in panels.items():
        for label, images in (("cue: " + name, cue), ("PCMemory", by_pc), ("Hopfield", by_hopfield),
                              ("original", stored)):
            for col in range(shown):
                ax = axes[row, col]
                ax.imshow(torch.nan_to_num(images[col], nan=-0.3).reshape(8, 8).numpy(), cmap="gray_r",
                          vmin=-0.3, vmax=1.0)
                ax.set_xticks([])
                ax.set_yticks([])
            axes[row, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
            row += 1
    fig.suptitle(f"{args.count} stored digits: cues, recalls, originals (NaN drawn white)", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
