"""Reproduction for docs/agents.md, "Suite runs (session of 2026-12-03)": why MountainCar idles.

Trains ``ActiveInferenceAgent("MountainCarContinuous-v0", seed=0, terminal_value=True)`` for
``--steps`` env steps (or loads ``--agent`` if it exists), then evaluates the same model and value
on the first ``--episodes`` evaluation episodes (eval env seeded 10,000, as in the benchmark) with
the planner's discount 1 (the default) and with ``discount = value_discount`` (0.95), with and
without the terminal value. With ``--replay`` it also prints, for the first episode, the replans
whose chosen plan the model scores above 100 (more than the task allows): per model member the
in-horizon return, how often +100 is counted, and the terminal value at the horizon.

    OMP_NUM_THREADS=1 python docs/curves/mountaincar_idle_diagnosis.py --steps 8000 --replay
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.evaluation import evaluate_policy

import pcctrl.envs  # noqa: F401
from pcctrl.agents.active_inference import ActiveInferenceAgent


def trained(steps: int, path: Path) -> ActiveInferenceAgent:
    """The seed-0 terminal-value agent after ``steps`` steps (cached in ``path``)."""
    if path.exists():
        return ActiveInferenceAgent.load(path)
    agent = ActiveInferenceAgent("MountainCarContinuous-v0", seed=0, terminal_value=True)
    agent.learn(steps)
    agent.save(path)
    return agent


def per_member(agent: ActiveInferenceAgent, obs: np.ndarray, plan: torch.Tensor) -> tuple[np.ndarray, ...]:
    """Roll ``plan (H, a)`` through every member: in-horizon return, +100 count, alive at H, V(o_H)."""
    pl, pref = agent.planner, agent.planner.preference
    state = torch.as_tensor(obs, dtype=torch.float32)[None]
    total = alive = bonus = None
    with torch.no_grad():
        for t in range(pl.horizon):
            act = plan[t][None]
            nxt, _ = pl.dynamics(state, act)
            prev = state.unsqueeze(1).expand_as(nxt) if state.ndim == 2 else state
            value = pref.log_preference(prev, act.unsqueeze(1).expand(-1, nxt.shape[1], -1), nxt)
            value = value if alive is None else value * alive
            bonus = (value > 50).int() if bonus is None else bonus + (value > 50).int()
            total = value if total is None else total + value
            keep = (~pref.terminated(nxt)).float()
            alive = keep if alive is None else alive * keep
            state = nxt
        tail = agent.learner.value.model(state).reshape(-1)
    return total[0].numpy(), bonus[0].numpy(), alive[0].int().numpy(), tail.numpy()


def replay(agent: ActiveInferenceAgent) -> None:
    """First eval episode at the defaults; print the replans the model scores above 100."""
    env = gym.make("MountainCarContinuous-v0")
    obs, _ = env.reset(seed=10_000)
    t, done, ret = 0, False, 0.0
    while not done:
        action, _ = agent.predict(obs, episode_start=np.array([t == 0]), deterministic=True)
        if t % agent.config.action_repeat == 0:
            total, bonus, alive, tail = per_member(agent, obs, agent.planner.last_plan[0].clone())
            score = float(np.mean(total + alive * tail))
            if score > 100:
                print(f"  t={t} obs=({obs[0]:.3f}, {obs[1]:.4f}) score {score:.1f}: return per member "
                      f"{np.round(total, 1).tolist()}, +100 counted {bonus.tolist()}, alive at H {alive.tolist()}, "
                      f"V(o_H) {np.round(tail, 1).tolist()}")
        obs, r, term, trunc, _ = env.step(action)
        ret, t, done = ret + r, t + 1, term or trunc
    print(f"  episode return {ret:.1f}, length {t}, flag {term}")


def main() -> None:
    """Train or load, optionally replay, then compare the planner's discount."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--agent", type=Path, default=Path("/tmp/mc_terminal_value_seed0.pcctrl"))
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--replay", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    trained(args.steps, args.agent)
    if args.replay:
        replay(ActiveInferenceAgent.load(args.agent))
    for discount, with_value in [(1.0, True), (0.95, True), (0.95, False)]:
        agent = ActiveInferenceAgent.load(args.agent)
        agent.planner.discount = discount
        if not with_value:
            agent.planner.set_terminal_value(None)
        env = gym.make("MountainCarContinuous-v0")
        env.reset(seed=10_000)
        rets, lens = evaluate_policy(agent, env, n_eval_episodes=args.episodes, return_episode_rewards=True, warn=False)
        print(f"planner discount {discount}, terminal value {with_value}: returns {np.round(rets, 1).tolist()}, "
              f"lengths {[int(n) for n in lens]}")


if __name__ == "__main__":
    main()
