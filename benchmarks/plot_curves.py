"""Learning curves from ``agent_sample_efficiency.py --json`` records: merge, "held" summary, PNG.

Each JSON holds one record per (env, agent, overrides, seed) with its evaluation points, written
after every evaluation (a killed run keeps what it measured). Records of the same env, agent and
overrides from several files (seeds run in separate processes) are merged into one group; the
mean over seeds is taken at the evaluation steps every seed of the group reached. "Held" (issue
11): the mean reaches the threshold and stays at or above it at every later evaluation, to the
end of the budget; a group whose seeds stop before the budget can at most be "held so far".

    python benchmarks/plot_curves.py docs/curves/a.json docs/curves/b.json --out docs/curves/x.png
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Point = tuple[int, float]


def held(mean: Sequence[Point], threshold: float) -> bool:
    """Whether the mean curve reaches ``threshold`` and stays at or above it at every later evaluation."""
    hit = next((i for i, (_, m) in enumerate(mean) if m >= threshold), None)
    return hit is not None and all(m >= threshold for _, m in mean[hit:])


def overrides_key(overrides: dict[str, Any]) -> str:
    """A canonical text of an overrides dict (tuples and lists alike), used to group records."""
    return json.dumps(overrides, sort_keys=True, default=list)


@dataclass
class Group:
    """The seeds of one (env, agent, overrides) run, merged from one or more JSON files."""

    env: str
    agent: str
    overrides: dict[str, Any]
    threshold: float
    budget: int
    seeds: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Agent name plus its overrides, for legends and tables."""
        extra = " ".join(f"{k}={v}" for k, v in sorted(self.overrides.items()))
        return f"{self.agent} {extra}".strip()

    def seed_curve(self, seed: int) -> list[Point]:
        """``(step, mean eval return)`` of one seed."""
        return [(int(p["step"]), float(p["mean"])) for p in self.seeds[seed]["points"]]

    def mean_curve(self) -> list[Point]:
        """The mean over seeds at the steps every seed reached (in order)."""
        curves = [dict(self.seed_curve(s)) for s in sorted(self.seeds)]
        common = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
        return [(s, float(np.mean([c[s] for c in curves]))) for s in common]

    @property
    def last_step(self) -> int:
        """The last step the mean curve covers (0 with no common point)."""
        mean = self.mean_curve()
        return mean[-1][0] if mean else 0

    @property
    def complete(self) -> bool:
        """Whether every seed's curve reaches the budget."""
        return bool(self.seeds) and self.last_step >= self.budget

    def hit(self) -> int | None:
        """First step at which the mean reaches the threshold (``None``: not reached)."""
        return next((s for s, m in self.mean_curve() if m >= self.threshold), None)

    def verdict(self) -> str:
        """``held``, ``not held``, ``not reached``, or ``held so far (to N of B)`` for a partial run."""
        mean = self.mean_curve()
        if self.hit() is None:
            return "not reached" if self.complete else f"not reached so far (to {self.last_step} of {self.budget})"
        if not held(mean, self.threshold):
            return "not held"
        return "held" if self.complete else f"held so far (to {self.last_step} of {self.budget})"

    def episodes(self) -> tuple[int, int, int]:
        """Evaluation episodes over all seeds and points: (total, at or above threshold, ended early).

        "Ended early" counts episodes shorter than the env's episode limit (terminated), which on
        MountainCarContinuous is reaching the flag.
        """
        total = above = early = 0
        for rec in self.seeds.values():
            limit = rec.get("max_episode_steps")
            for p in rec["points"]:
                total += len(p["returns"])
                above += sum(r >= self.threshold for r in p["returns"])
                early += sum(limit is not None and n < limit for n in p["lengths"])
        return total, above, early


def load_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every per-seed record of the given ``--json`` files, each with its file's ``command`` and ``machine``."""
    records = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        if data.get("format") != "pcctrl-curves-1":
            raise ValueError(f"{path}: not an agent_sample_efficiency --json record (format {data.get('format')!r})")
        for rec in data["records"]:
            records.append(dict(rec, file=str(path), command=data.get("command"), machine=data.get("machine")))
    return records


def merge(records: Iterable[dict[str, Any]]) -> list[Group]:
    """Group records by (env, agent, overrides); a seed recorded twice keeps the record with more points."""
    groups: dict[tuple[str, str, str], Group] = {}
    for rec in records:
        key = (rec["env"], rec["agent"], overrides_key(rec["overrides"]))
        group = groups.setdefault(key, Group(rec["env"], rec["agent"], rec["overrides"], float(rec["threshold"]),
                                             int(rec["steps"])))
        if group.threshold != float(rec["threshold"]) or group.budget != int(rec["steps"]):
            raise ValueError(f"{rec['file']}: {rec['env']} {rec['agent']} seed {rec['seed']} has threshold/budget "
                             f"{rec['threshold']}/{rec['steps']}, others {group.threshold}/{group.budget}")
        old = group.seeds.get(int(rec["seed"]))
        if old is None or len(rec["points"]) > len(old["points"]):
            group.seeds[int(rec["seed"])] = rec
    return list(groups.values())


def summary_lines(groups: Sequence[Group]) -> list[str]:
    """The suite summary table (mean over seeds) of merged groups, as printed lines."""
    lines = ["suite summary (mean over seeds; held = at or above the threshold at every evaluation after "
             "first reaching it, to the end of the budget):",
             f"  {'env':34s} {'agent':40s} {'seeds':>7s} {'thresh':>8s} {'hit':>7s} {'final':>8s} "
             f"{'episodes >= thr':>15s} {'ended early':>11s}  verdict"]
    for g in groups:
        mean = g.mean_curve()
        total, above, early = g.episodes()
        hit = g.hit()
        final = f"{mean[-1][1]:.1f}" if mean else "-"
        lines.append(f"  {g.env:34s} {g.label[:40]:40s} {','.join(map(str, sorted(g.seeds))):>7s} "
                     f"{g.threshold:8.1f} {('-' if hit is None else str(hit)):>7s} {final:>8s} "
                     f"{f'{above}/{total}':>15s} {f'{early}/{total}':>11s}  {g.verdict()}")
    return lines + ratio_lines(groups)


def ratio_lines(groups: Sequence[Group]) -> list[str]:
    """Steps to the threshold, each agent group against SAC (without overrides) on the same env."""
    lines = []
    for sac in (g for g in groups if g.agent == "SAC" and not g.overrides):
        for g in (g for g in groups if g.env == sac.env and g is not sac):
            hit, sac_hit = g.hit(), sac.hit()
            if hit is None:
                text = "undefined (not reached)"
            elif sac_hit is None:
                text = f"< {hit / sac.last_step:.3f} (SAC did not reach it in {sac.last_step} steps)" if sac.last_step else "undefined"
            else:
                text = f"{hit} / {sac_hit} = {hit / sac_hit:.3f}"
            lines.append(f"  {g.label} / SAC on {g.env}, steps to {g.threshold:g}: {text}")
    if lines:
        lines.insert(0, "steps-to-threshold ratio, agent / SAC (mean curves over seeds):")
    return lines


def markdown_table(group: Group) -> list[str]:
    """A markdown table of one group: the mean over seeds and each seed's eval return per evaluation step."""
    steps = sorted({s for seed in group.seeds for s, _ in group.seed_curve(seed)})
    thousands = bool(steps) and steps[-1] >= 10_000 and all(s % 1000 == 0 for s in steps)
    head = [f"{s // 1000}k" if thousands else str(s) for s in steps]
    mean = dict(group.mean_curve())
    hit = group.hit()

    def cell(value: float | None, bold: bool = False) -> str:
        return "-" if value is None else (f"**{value:.1f}**" if bold else f"{value:.1f}")

    lines = ["| env steps | " + " | ".join(head) + " |", "|---" * (len(steps) + 1) + "|",
             f"| mean of {len(group.seeds)} seeds | " + " | ".join(cell(mean.get(s), s == hit) for s in steps) + " |"]
    for seed in sorted(group.seeds):
        curve = dict(group.seed_curve(seed))
        lines.append(f"| seed {seed} | " + " | ".join(cell(curve.get(s)) for s in steps) + " |")
    return lines


def plot(groups: Sequence[Group], path: Path) -> Path:
    """Draw each env's groups (per-seed thin lines, mean thick, threshold dashed) into one PNG panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(g.env for g in groups))
    if not envs:
        raise ValueError("no curves to plot")
    columns = min(2, len(envs))
    rows = math.ceil(len(envs) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(7 * columns, 4.5 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, env in zip(axes.flat, envs):
        mine = [g for g in groups if g.env == env]
        verdicts = []
        for i, g in enumerate(mine):
            colour = colours[i % len(colours)]
            name = g.label if sum(h.agent == g.agent for h in mine) > 1 else g.agent
            for seed in sorted(g.seeds):
                xs, ys = zip(*g.seed_curve(seed)) if g.seeds[seed]["points"] else ((), ())
                ax.plot(xs, ys, color=colour, alpha=0.35, lw=0.9, marker=".", ms=3,
                        label=f"{name}, each seed ({','.join(map(str, sorted(g.seeds)))})" if seed == min(g.seeds) else None)
            mean = g.mean_curve()
            if mean:
                xs, ys = zip(*mean)
                ax.plot(xs, ys, color=colour, lw=2.2, marker="o", ms=4,
                        label=f"{g.label} (mean of {len(g.seeds)} seeds)")
            verdicts.append(f"{name}: {g.verdict()}")
        ax.axhline(mine[0].threshold, color="k", ls="--", lw=1, label=f"threshold {mine[0].threshold:g}")
        ax.set_xlim(0, max(g.budget for g in mine) * 1.02)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return")
        ax.set_title(f"{env}\n" + "\n".join(verdicts), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(envs):]:
        ax.set_visible(False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """Merge the given JSON records, print the summary and (with ``--out``) write the PNG."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="PNG to write")
    parser.add_argument("--env", nargs="*", default=None, help="only these env ids")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table per group")
    args = parser.parse_args(argv)
    groups = [g for g in merge(load_records(args.json)) if args.env is None or g.env in args.env]
    for line in summary_lines(groups):
        print(line)
    if args.markdown:
        for group in groups:
            print(f"\n{group.env}, {group.label}:\n" + "\n".join(markdown_table(group)))
    if args.out is not None:
        print(f"wrote {plot(groups, args.out)}")


if __name__ == "__main__":
    main()
