"""The ``pcctrl fit``, ``pcctrl filter`` and ``pcctrl serve`` subcommands."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any


def _threads(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def add_parsers(commands: Any) -> None:
    """Add ``fit``, ``filter`` and ``serve`` to the ``pcctrl`` subparsers."""
    threads = {"type": int, "default": 1, "help": "torch CPU threads (default 1: fastest for these small models; "
                                                  "0 keeps torch's default)"}
    fit = commands.add_parser("fit", help="learn a state-space model from a ROS 2 bag (PC learning)")
    fit.add_argument("bag", type=Path, help="rosbag2 folder (MCAP or sqlite3) or .mcap file")
    fit.add_argument("--state", nargs="+", required=True, metavar="SPEC",
                     help="topics forming the state, TOPIC[:FIELD][=COL,...], e.g. /joint_states:position "
                          "/joint_states:velocity")
    fit.add_argument("--obs-topic", nargs="+", required=True, metavar="SPEC", help="sensor readings the filter sees")
    fit.add_argument("--action-topic", nargs="+", required=True, metavar="SPEC", help="commands sent to the robot")
    fit.add_argument("--dt", type=float, required=True, help="grid step in seconds (the filter's rate)")
    fit.add_argument("--out", type=Path, required=True, help="model file to write (pcctrl checkpoint: safetensors + JSON, no pickle)")
    fit.add_argument("--stamps", choices=("header", "log"), default="header",
                     help="time messages by header.stamp (default) or by the bag's log time")
    fit.add_argument("--val-fraction", type=float, default=0.2, help="last fraction of the bag held out (default 0.2)")
    fit.add_argument("--window", type=int, default=20, help="training window length in steps (default 20)")
    fit.add_argument("--k", type=int, default=10, help="horizon of the k-step error (default 10)")
    fit.add_argument("--hidden", type=int, default=32, help="hidden units per layer (default 32)")
    fit.add_argument("--epochs", type=int, default=40, help="PC learning epochs (default 40)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--threads", **threads)
    filt = commands.add_parser("filter", help="run the PC filter over a bag; write beliefs to MCAP and a PNG")
    filt.add_argument("bag", type=Path)
    filt.add_argument("--model", type=Path, required=True, help="model file from pcctrl fit")
    filt.add_argument("--out", type=Path, required=True, help="MCAP file to write (opens in Foxglove)")
    filt.add_argument("--png", type=Path, default=None, help="plot of estimates vs readings (default OUT.png)")
    filt.add_argument("--prefix", default="/pcctrl", help="topic prefix of the new topics (default /pcctrl)")
    filt.add_argument("--threads", **threads)
    serve = commands.add_parser("serve", help="run an exported controller as a Zenoh node (JointState in, command out)")
    serve.add_argument("controller", type=Path, help="exported controller (.pt or .onnx, from pcctrl.runtime.export)")
    serve.add_argument("--sub", required=True, help="key expression of the JointState readings")
    serve.add_argument("--pub", required=True, help="key expression of the commands")
    serve.add_argument("--joints", required=True, help="comma-separated joint names forming the reading")
    serve.add_argument("--rate", type=float, default=None, help="step at this rate (Hz); default: once per reading")
    serve.add_argument("--listen", nargs="*", default=["tcp/127.0.0.1:7447"], help="Zenoh listen endpoints")
    serve.add_argument("--connect", nargs="*", default=[], help="Zenoh endpoints to connect to")
    serve.add_argument("--budget-us", type=float, default=1000.0, help="per-step deadline in µs (default 1000)")
    serve.add_argument("--max-age-ms", type=float, default=100.0, help="readings older than this are stale")
    serve.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    serve.add_argument("--threads", **threads)


def run(args: argparse.Namespace) -> int:
    """Run one of the subcommands; returns the exit status (2 with a one-line message on bad input)."""
    from ..errors import PCError

    try:
        return _run(args)
    except (ImportError, PCError, FileNotFoundError) as exc:
        print(f"pcctrl {args.command}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    _threads(args)
    if args.command == "fit":
        from .fit import fit_bag
        from .model_file import save_model

        fitted, report = fit_bag(args.bag, args.state, args.obs_topic, args.action_topic, args.dt,
                                 val_fraction=args.val_fraction, window=args.window, k=args.k, hidden=args.hidden,
                                 epochs=args.epochs, seed=args.seed, stamps=args.stamps, progress=True)
        save_model(fitted, args.out)
        print(report.table())
        print(f"wrote {args.out}")
        return 0
    if args.command == "filter":
        from .model_file import load_model
        from .offline_filter import filter_bag

        png = args.png if args.png is not None else args.out.with_suffix(".png")
        result = filter_bag(args.bag, load_model(args.model), args.out, png=png, prefix=args.prefix, progress=True)
        for topic, count in result.topics.items():
            print(f"{topic}: {count} messages")
        if result.rmse is not None:
            print(f"belief mean RMSE against the state topics: {result.rmse:.5g}")
        print(f"wrote {args.out} and {png}")
        return 0
    if args.command == "serve":
        from ..runtime import ExportedController
        from .zenoh_node import NodePolicy, ZenohNode, zenoh_config

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        policy = NodePolicy(budget_s=args.budget_us * 1e-6, max_age_s=args.max_age_ms * 1e-3)
        node = ZenohNode(ExportedController(args.controller), args.joints.split(","), args.sub, args.pub,
                         config=zenoh_config(args.listen, args.connect), policy=policy, rate_hz=args.rate)
        signal.signal(signal.SIGTERM, lambda *_: node.close())
        node.start()
        print(f"serving {args.controller} on {args.sub} -> {args.pub}", flush=True)
        try:
            node.spin(args.duration)
        except KeyboardInterrupt:
            pass
        finally:
            node.close()
        print(node.summary(), flush=True)
        return 0
    print(f"pcctrl: unknown command {args.command}", file=sys.stderr)
    return 2
