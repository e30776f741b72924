"""PC training step time over backprop step time, same model, measured side by side.

Prints, for an MLP 784-256-256-10 (tanh, batch 256) and a CNN (2 x conv, relu, maxpool, then
linear; 28x28, batch 256), both with a value node at every module boundary: the median step
time of backprop and of PC (``il`` at T = 1, 8, 20; ``fpa`` at T = depth; ``exact``) on the
fused path (the default) and on the general autograd path (``fused=False``), and each ratio
PC/BP next to its bar ((2T+1)/3 for il, 1.5 for exact). The fused path is analytic (no
compilation), so there is no first-call compile time to report; the first call's time is printed
anyway. Contenders alternate round by round, so machine drift hits all alike. Each step is
timed on two clocks: wall time, and the process's CPU time (``time.process_time``), which on a
shared, oversubscribed machine leaves out the time the process waits for a core; with one
thread the two agree on an idle machine. Verdicts are given for both.

Usage: ``python benchmarks/core_speed.py [--device cpu|cuda] [--threads 1,2] [--models mlp,cnn]
[--rounds 5] [--repeats 10]``.
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


MODELS = {"mlp": ("MLP 784-256-256-10 tanh", mlp, (784,)), "cnn": ("CNN 2x(conv,relu,maxpool)+linear, 28x28", cnn, (1, 28, 28))}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(step: Callable[[], None], device: torch.device, repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        _sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def _interleaved(steps: dict[str, Callable[[], None]], device: torch.device, repeats: int,
                 rounds: int) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """First-call wall times, then wall and CPU medians over rounds that alternate (ms)."""
    first = {name: 1000 * _timed(step, device, 1)[0][0] for name, step in steps.items()}
    for step in steps.values():
        _timed(step, device, 1)
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            w, c = _timed(step, device, repeats)
            wall[name].append(1000 * statistics.median(w))
            cpu[name].append(1000 * statistics.median(c))
    return (first, {n: statistics.median(v) for n, v in wall.items()}, {n: statistics.median(v) for n, v in cpu.items()})


Row = tuple[str, float, float, float, float, float | None, float]


def bench_model(make: Callable[[], nn.Module], x: torch.Tensor, labels: torch.Tensor, device: torch.device,
                repeats: int, rounds: int) -> list[Row]:
    """Per contender: label, wall ms, wall PC/BP, CPU ms, CPU PC/BP, bar, first-call ms."""
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
    bars: dict[str, float | None] = {"backprop": None}
    for algorithm, T in (("il", 1), ("il", 8), ("il", 20), ("fpa", None), ("exact", None)):
        for fused in (True, False):
            net = PCNetwork(model, algorithm=algorithm, T=T, fused=fused)
            label = (f"{algorithm} T={T}" if T is not None else algorithm) + ("" if fused else " eager")
            steps[label] = (lambda n: lambda: n.train_step(x, target, opt))(net)
            bars[label] = (2 * T + 1) / 3 if T is not None else (1.5 if algorithm == "exact" else None)
    first, wall, cpu = _interleaved(steps, device, repeats, rounds)
    return [(label, wall[label], wall[label] / wall["backprop"], cpu[label], cpu[label] / cpu["backprop"],
             bars[label], first[label]) for label in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", default=None, help="comma-separated CPU thread counts (default 1,2 on CPU)")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per contender per round (MLP; CNN a fifth)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    threads = [int(t) for t in args.threads.split(",")] if args.threads else ([1, 2] if device.type == "cpu" else [torch.get_num_threads()])
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (256,), generator=gen)
    print(f"torch {torch.__version__}; device {device}; batch 256; medians of {args.rounds} interleaved rounds")
    for count in threads:
        torch.set_num_threads(count)
        for key in args.models.split(","):
            title, make, shape = MODELS[key]
            x = torch.randn(256, *shape, generator=gen)
            repeats = args.repeats if key == "mlp" else max(1, args.repeats // 5)
            print(f"\n{title} on {device} ({count} thread{'s' if count > 1 else ''})")
            print(f"{'step':<14}{'wall ms':>9}{'PC/BP':>7}{'cpu ms':>9}{'PC/BP':>7}{'bar':>7}  ok (wall cpu)"
                  f"{'first ms':>10}")
            for label, ms, ratio, cpu_ms, cpu_ratio, bar, first in bench_model(make, x, labels, device, repeats,
                                                                                args.rounds):
                verdict = "" if bar is None else " ".join("yes" if r <= bar else "NO" for r in (ratio, cpu_ratio))
                bar_text = f"{bar:.2f}" if bar is not None else "-"
                print(f"{label:<14}{ms:9.2f}{ratio:7.2f}{cpu_ms:9.2f}{cpu_ratio:7.2f}{bar_text:>7}  {verdict:<12}"
                      f"{first:10.1f}")


if __name__ == "__main__":
    main()
