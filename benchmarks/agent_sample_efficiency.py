"""ActiveInferenceAgent vs SB3 SAC (default hyperparameters): eval return against env steps.

Both run on the same seeds; each is evaluated every ``--eval-every`` steps on a separate env
(``--eval-episodes`` deterministic episodes). Prints the mean curves side by side, the steps to
reach the threshold (first evaluation whose mean over seeds reaches it) and the ratio agent/SAC,
and the agent's planning latency per control step. Example (the run recorded in docs/agents.md):

    python benchmarks/agent_sample_efficiency.py --env Pendulum-v1 --seeds 0 1 2 \
        --agent-steps 1000 --sac-steps 6000 --eval-every 200 --sac-eval-every 500
"""

from __future__ import annotations

import argparse
import ast
import platform
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy

import pcctrl.envs  # noqa: F401  (registers pcctrl/ ids)
from pcctrl.agents.active_inference import ActiveInferenceAgent

THRESHOLDS = {"Pendulum-v1": -200.0, "InvertedPendulum-v5": 1000.0, "MountainCarContinuous-v0": 90.0,
              "pcctrl/NoisyPendulum-v0": -250.0}


def _curve(model, env_id: str, seed: int, steps: int, every: int, episodes: int, learn_kw: dict) -> list[tuple[int, float]]:
    eval_env = gym.make(env_id)
    eval_env.reset(seed=10_000 + seed)
    curve = []
    done = 0
    while done < steps:
        chunk = min(every, steps - done)
        model.learn(chunk, reset_num_timesteps=done == 0, **learn_kw)
        done += chunk
        mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=episodes, warn=False)
        curve.append((done, float(mean)))
        print(f"  {type(model).__name__:22s} seed {seed} step {done:6d} eval {mean:9.1f}", flush=True)
    return curve


def _steps_to(curves: list[list[tuple[int, float]]], threshold: float) -> tuple[int | None, list[tuple[int, float]]]:
    steps = [s for s, _ in curves[0]]
    mean = [(s, float(np.mean([c[i][1] for c in curves]))) for i, s in enumerate(steps)]
    hit = next((s for s, m in mean if m >= threshold), None)
    return hit, mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--agent-steps", type=int, default=1000)
    parser.add_argument("--sac-steps", type=int, default=6000)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--sac-eval-every", type=int, default=500)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--skip-sac", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="AIFConfig overrides for the agent, e.g. --set iterations=5 horizon=25")
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes FIELD=VALUE, got {item!r}")
        overrides[name] = ast.literal_eval(value)
    torch.set_num_threads(args.threads)
    threshold = args.threshold if args.threshold is not None else THRESHOLDS.get(args.env, 0.0)
    print(f"{args.env}: threshold {threshold}, seeds {args.seeds}, agent overrides {overrides or 'none'}, machine {platform.processor() or platform.machine()}, "
          f"torch threads {torch.get_num_threads()}")
    t0 = time.time()
    agents, latencies = [], []
    for seed in args.seeds:
        agent = ActiveInferenceAgent(args.env, seed=seed, **overrides)
        agents.append(_curve(agent, args.env, seed, args.agent_steps, args.eval_every, args.eval_episodes, {}))
        latencies.append(agent.plan_latency_ms)
    repeat = agent.config.action_repeat
    t_agent = time.time() - t0
    sacs = []
    if not args.skip_sac:
        t0 = time.time()
        for seed in args.seeds:
            sac = SAC("MlpPolicy", gym.make(args.env), seed=seed, verbose=0, device="cpu")
            sacs.append(_curve(sac, args.env, seed, args.sac_steps, args.sac_eval_every, args.eval_episodes, {}))
        t_sac = time.time() - t0
    hit_a, mean_a = _steps_to(agents, threshold)
    print(f"\nActiveInferenceAgent mean eval return ({len(args.seeds)} seeds, {t_agent:.0f} s wall):")
    for s, m in mean_a:
        print(f"  {s:6d} {m:9.1f}")
    print(f"  steps to {threshold}: {hit_a if hit_a is not None else f'not within {args.agent_steps}'}")
    print(f"  planning latency per planning call (CPU, {torch.get_num_threads()} thread): "
          f"{np.mean(latencies):.2f} ms (per seed {[round(x, 2) for x in latencies]}); one call per "
          f"{repeat} env step(s): {np.mean(latencies) / repeat:.2f} ms per env step")
    if sacs:
        hit_s, mean_s = _steps_to(sacs, threshold)
        print(f"\nSAC (SB3 defaults) mean eval return ({len(args.seeds)} seeds, {t_sac:.0f} s wall):")
        for s, m in mean_s:
            print(f"  {s:6d} {m:9.1f}")
        print(f"  steps to {threshold}: {hit_s if hit_s is not None else f'not within {args.sac_steps}'}")
        if hit_a is not None and hit_s is not None:
            print(f"\nratio steps-to-threshold agent/SAC: {hit_a / hit_s:.3f}")
        elif hit_a is not None:
            print(f"\nratio steps-to-threshold agent/SAC: < {hit_a / args.sac_steps:.3f} (SAC did not reach it)")
        else:
            print("\nratio steps-to-threshold agent/SAC: undefined (the agent did not reach the threshold)")


if __name__ == "__main__":
    main()
