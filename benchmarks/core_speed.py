"""PC training step time over backprop step time, same model, measured side by side.

Prints, for an MLP 784-256-256-10 (tanh, batch 256) and a small CNN: the median step time of
backprop and of PC (``il`` at T = 1, 8, 20; ``fpa`` at T = depth; ``exact``), and each ratio
PC/BP next to its bar ((2T+1)/3 for il, 2 for exact). Runs on CPU with 1 and 2 threads, and on
CUDA when a GPU is present. Usage: ``python benchmarks/core_speed.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from pcctrl import PCNetwork


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(784, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10))


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _median_ms(step: Callable[[], None], device: torch.device, repeats: int) -> float:
    for _ in range(3):
        step()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _interleaved(steps: dict[str, Callable[[], None]], device: torch.device, repeats: int, rounds: int = 5) -> dict[str, float]:
    """Medians over rounds that alternate between the contenders, so drift hits all alike."""
    per_round: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            per_round[name].append(_median_ms(step, device, max(1, repeats // rounds)))
    return {name: statistics.median(values) for name, values in per_round.items()}


def bench_model(name: str, make: Callable[[], nn.Module], x: torch.Tensor, labels: torch.Tensor,
                device: torch.device, repeats: int) -> list[tuple[str, float, float, float | None]]:
    torch.manual_seed(0)
    model = make().to(device)
    x, labels = x.to(device), labels.to(device)
    target = nn.functional.one_hot(labels, 10).float()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def backprop() -> None:
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * (model(x) - target).square().sum(1).mean()
        loss.backward()
        opt.step()

    steps: dict[str, Callable[[], None]] = {"backprop": backprop}
    bars: dict[str, float | None] = {"backprop": 1.0}
    for algorithm, T in (("il", 1), ("il", 8), ("il", 20), ("fpa", None), ("exact", None)):
        net = PCNetwork(model, algorithm=algorithm, T=T)
        label = f"{algorithm} T={T}" if T is not None else algorithm
        steps[label] = (lambda n: lambda: n.train_step(x, target, opt))(net)
        bars[label] = (2 * T + 1) / 3 if T is not None else (2.0 if algorithm == "exact" else None)
    medians = _interleaved(steps, device, repeats)
    base = medians["backprop"]
    return [(label, ms, ms / base, bars[label]) for label, ms in medians.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    gen = torch.Generator().manual_seed(0)
    data = {
        "MLP 784-256-256-10": (mlp, torch.randn(256, 784, generator=gen)),
        "CNN 2conv+pool, 28x28": (cnn, torch.randn(256, 1, 28, 28, generator=gen)),
    }
    labels = torch.randint(0, 10, (256,), generator=gen)
    print(f"torch {torch.__version__}; batch 256; medians of interleaved rounds")
    for device in devices:
        for threads in ((1, 2) if device.type == "cpu" else (torch.get_num_threads(),)):
            torch.set_num_threads(threads)
            for name, (make, x) in data.items():
                print(f"\n{name} on {device} ({threads} thread{'s' if threads > 1 else ''})")
                print(f"{'step':<12}{'ms':>9}{'PC/BP':>9}{'bar':>8}  ok")
                for label, ms, ratio, bar in bench_model(name, make, x, labels, device, args.repeats):
                    verdict = "" if bar is None or label == "backprop" else ("yes" if ratio <= bar else "NO")
                    bar_text = f"{bar:.2f}" if bar is not None else "-"
                    print(f"{label:<12}{ms:9.2f}{ratio:9.2f}{bar_text:>8}  {verdict}")


if __name__ == "__main__":
    main()
