"""Capacity and robustness of the associative memories: retrieval fraction against N stored patterns.

For each data set (scikit-learn's 8x8 digits in [0, 1]; random binary ±1 patterns of width 100),
each N in ``--sizes`` and each memory (the UHN grid: 3 similarities x 4 separations, the
classical / modern Hopfield and SDM presets, PCMemory), N patterns are drawn and stored once,
then recalled from four corruptions: half of the entries masked (NaN, ``recall``) and Gaussian
noise at three levels (``denoise``). A pattern counts as retrieved if its summed squared error is
below the UHN paper's threshold scaled to the width (50 per 3072 entries). Prints one table per
data set and corruption, the orderings of similarities and separations (mean fraction over N),
PCMemory's error beside the best Hopfield preset's, and writes one PNG of capacity curves.

Run: ``python benchmarks/memory_capacity.py [--quick] [--out memory_capacity.png] [--device cpu]``
(needs scikit-learn, in the ``[test]``/``[bench]`` extras). 1 torch thread.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from pcctrl.memory import AssociativeMemory, HopfieldMemory, PCMemory, corrupt, retrieved  # noqa: E402
from pcctrl.memory.capacity import PAPER_THRESHOLD_PER_ENTRY  # noqa: E402

SIMILARITIES = ("dot", "euclidean", "manhattan")
SEPARATIONS = (("identity", 1.0), ("softmax", 10.0), ("polynomial", 10.0), ("max", 1.0))


def datasets(seed: int) -> dict[str, tuple[torch.Tensor, tuple[float, ...]]]:
    """Pools of patterns and their three noise levels (std, about 1/4, 3/4 and 5/4 of the data's std)."""
    from sklearn.datasets import load_digits

    digits = torch.tensor(load_digits().data / 16.0, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    binary = torch.where(torch.rand(1000, 100, generator=g) < 0.5, -1.0, 1.0)
    return {"digits": (digits, (0.1, 0.3, 0.5)), "binary": (binary, (0.25, 0.75, 1.25))}


def memories(name: str, width: int, device: str, pc_epochs: int) -> dict[str, Callable[[], AssociativeMemory]]:
    """Every memory to compare, by label (factories, so each N starts fresh)."""
    made: dict[str, Callable[[], AssociativeMemory]] = {}
    for sim in SIMILARITIES:
        for sep, beta in SEPARATIONS:
            made[f"{sim}/{sep}"] = lambda s=sim, p=sep, b=beta: HopfieldMemory(s, p, beta=b, device=device)
    if name == "binary":
        made["classical Hopfield"] = lambda: HopfieldMemory.classical(steps=5, device=device)
    made["modern Hopfield (beta 8)"] = lambda: HopfieldMemory.modern(beta=8.0, device=device)
    scale = 1.0 if name == "digits" else 2.0  # L1 distance between two levels of the data
    made["SDM (radius 0.15 d)"] = lambda: HopfieldMemory.sdm(0.15 * width * scale, device=device)
    made["PCMemory"] = lambda: PCMemory(epochs=pc_epochs, device=device)
    return made


def run(sizes: list[int], device: str, pc_epochs: int, seed: int) -> dict:
    """results[data][corruption][memory] = (fractions per N, mse per N)."""
    results: dict = {}
    for data, (pool, noise_levels) in datasets(seed).items():
        pool = pool.to(device)
        threshold = PAPER_THRESHOLD_PER_ENTRY * pool.shape[1]
        corruptions = [("mask 50%", "mask", 0.5)] + [(f"noise {s:g}", "noise", s) for s in noise_levels]
        table = results.setdefault(data, {label: {} for label, _, _ in corruptions})
        factories = memories(data, pool.shape[1], device, pc_epochs)
        for n in sizes:
            g = torch.Generator().manual_seed(seed + n)
            chosen = pool[torch.randperm(pool.shape[0], generator=g)[:n].to(device)]
            cues = {label: corrupt(chosen, kind, level, g) for label, kind, level in corruptions}
            for label_m, make in factories.items():
                start = time.perf_counter()
                memory = make().store(chosen)
                for label, kind, _ in corruptions:
                    out = memory.recall(cues[label]) if kind == "mask" else memory.denoise(cues[label])
                    frac = float(retrieved(out, chosen, threshold).float().mean())
                    mse = float((out - chosen).square().mean())
                    fr, ms = table[label].setdefault(label_m, ([], []))
                    fr.append(frac)
                    ms.append(mse)
                if label_m == "PCMemory":
                    print(f"  {data} N={n}: PCMemory stored and recalled in {time.perf_counter() - start:.1f} s",
                          flush=True)
    return results


def report(results: dict, sizes: list[int]) -> None:
    """Markdown tables, orderings, and PCMemory against the best Hopfield memory."""
    for data, table in results.items():
        for corruption, rows in table.items():
            print(f"\n### {data}, {corruption}: fraction retrieved\n")
            print("| memory | " + " | ".join(f"N={n}" for n in sizes) + " |")
            print("|---|" + "---|" * len(sizes))
            for label, (fr, _) in rows.items():
                print(f"| {label} | " + " | ".join(f"{f:.2f}" for f in fr) + " |")
        print(f"\n### {data}: orderings (mean fraction over N and the four corruptions)\n")
        mean = {label: sum(sum(t[label][0]) / len(sizes) for t in table.values()) / len(table)
                for label in next(iter(table.values()))}
        for sim in SIMILARITIES:
            print(f"- similarity {sim}: " + ", ".join(f"{sep} {mean[f'{sim}/{sep}']:.3f}" for sep, _ in SEPARATIONS)
                  + f"; mean over separations {sum(mean[f'{sim}/{s}'] for s, _ in SEPARATIONS) / 4:.3f}")
        for sep, _ in SEPARATIONS:
            print(f"- separation {sep}: mean over similarities "
                  f"{sum(mean[f'{s}/{sep}'] for s in SIMILARITIES) / 3:.3f}")
        mask = table["mask 50%"]
        hop = {k: v for k, v in mask.items() if k != "PCMemory"}
        print(f"\n### {data}, mask 50%: mean squared error, PCMemory beside the best Hopfield memory at each N\n")
        print("| N | PCMemory | best Hopfield (which) | ratio PC / best |")
        print("|---|---|---|---|")
        for i, n in enumerate(sizes):
            best = min(hop, key=lambda k: hop[k][1][i])
            pc, b = mask["PCMemory"][1][i], hop[best][1][i]
            ratio = f"{pc / b:.3g}" if b > 0 else "inf (best is exact)"
            print(f"| {n} | {pc:.2e} | {b:.2e} ({best}) | {ratio} |")


def plot(results: dict, sizes: list[int], out: str) -> None:
    """One PNG: a panel per data set and corruption, a curve per memory."""
    rows, cols = len(results), len(next(iter(results.values())))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), sharex=True, sharey=True, squeeze=False)
    colours = {"dot": "tab:blue", "euclidean": "tab:orange", "manhattan": "tab:green"}
    styles = {"identity": ":", "softmax": "-", "polynomial": "--", "max": "-."}
    presets = {"classical Hopfield": "tab:red", "modern Hopfield (beta 8)": "tab:purple",
               "SDM (radius 0.15 d)": "tab:brown", "PCMemory": "black"}
    for r, (data, table) in enumerate(results.items()):
        for c, (corruption, curves) in enumerate(table.items()):
            ax = axes[r, c]
            for label, (fr, _) in curves.items():
                if "/" in label:
                    sim, sep = label.split("/")
                    ax.plot(sizes, fr, styles[sep], color=colours[sim], label=label, lw=1.4)
                else:
                    ax.plot(sizes, fr, "o-", color=presets.get(label, "tab:gray"), label=label, lw=2.0, ms=3)
            ax.set_xscale("log")
            ax.set_title(f"{data}: {corruption}", fontsize=10)
            ax.set_ylim(-0.03, 1.03)
            if r == rows - 1:
                ax.set_xlabel("N stored")
            if c == 0:
                ax.set_ylabel("fraction retrieved")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(out, dpi=110)
    print(f"\nwrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N in 10, 100, 1000 and a short PC training")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--pc-epochs", type=int, default=None, help="PCMemory training epochs (default 500, quick 100)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="memory_capacity.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = args.sizes or ([10, 100, 1000] if args.quick else [10, 20, 50, 100, 200, 500, 1000])
    epochs = args.pc_epochs or (100 if args.quick else 500)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, device {args.device}, "
          f"1 thread, sizes {sizes}, PCMemory epochs {epochs}")
    start = time.perf_counter()
    results = run(sizes, args.device, epochs, args.seed)
    report(results, sizes)
    plot(results, sizes, args.out)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
