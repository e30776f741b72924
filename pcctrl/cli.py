"""The ``pcctrl`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pcctrl.agents.compare_cli import add_compare_parser, run_compare
from pcctrl.io.commands import add_parsers as add_io_parsers
from pcctrl.io.commands import run as run_io


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pcctrl", description="Predictive-coding estimation, control and learning.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_compare_parser(commands)
    demo = commands.add_parser("demo", help="PC learning vs backprop, and a PC filter on a tracking task (about a minute)")
    demo.add_argument("--seed", type=int, default=0, help="seed for data, weights and noise (default 0)")
    demo.add_argument("--epochs", type=int, default=40, help="training epochs per learner (default 40)")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="folder for demo.png (default runs/demo)")
    demo.add_argument("--threads", type=int, default=1,
                      help="torch CPU threads for this run; its models are small and run fastest on one "
                           "(default 1; 0 keeps torch's default)")
    add_io_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pcctrl`` command."""
    args = _parser().parse_args(argv)
    if args.command == "compare":
        return run_compare(args)
    if args.command in ("fit", "filter", "serve"):
        return run_io(args)
    if args.command == "demo":
        if args.epochs <= 0 or args.threads < 0:
            print("pcctrl demo: --epochs must be positive and --threads non-negative", file=sys.stderr)
            return 2
        import torch

        from .demo import run_demo

        if args.threads:
            torch.set_num_threads(args.threads)

        print(run_demo(args.out, seed=args.seed, epochs=args.epochs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
