"""Train an ActiveInferenceAgent on Pendulum-v1 and plot its learning curve (a few minutes, 2 CPU cores).

    python examples/pendulum_aif.py --steps 1000 --out pendulum_aif.png
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402

from pcctrl.agents.active_inference import ActiveInferenceAgent  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000, help="env steps of training")
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="pendulum_aif.png")
    args = parser.parse_args()
    if args.steps < 1 or args.eval_every < 1 or args.eval_episodes < 1:
        parser.error("--steps, --eval-every and --eval-episodes must be positive")
    torch.set_num_threads(1)

    agent = ActiveInferenceAgent("Pendulum-v1", seed=args.seed)
    eval_env = gym.make("Pendulum-v1")
    eval_env.reset(seed=1000 + args.seed)
    steps, returns = [], []
    while agent.num_timesteps < args.steps:
        chunk = min(args.eval_every, args.steps - agent.num_timesteps)
        agent.learn(chunk, reset_num_timesteps=False)
        mean, std = evaluate_policy(agent, eval_env, n_eval_episodes=args.eval_episodes, warn=False)
        steps.append(agent.num_timesteps)
        returns.append(mean)
        print(f"step {agent.num_timesteps:5d}  eval return {mean:8.1f} +- {std:6.1f}  "
              f"planning {agent.plan_latency_ms:.1f} ms/step", flush=True)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, returns, "o-", label="ActiveInferenceAgent (PC ensemble + EFE/CEM)")
    ax.axhline(-200, color="grey", ls="--", label="threshold -200")
    ax.set_xlabel("env steps")
    ax.set_ylabel(f"mean eval return ({args.eval_episodes} episodes)")
    ax.set_title("Pendulum-v1")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
