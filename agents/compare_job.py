"""One comparison job: train one agent on one environment with one seed, evaluating as it goes.

The job seeds Python, NumPy and torch, the training environment and the agent with ``seed``; the
evaluation environment is a separate instance whose episodes start from ``seed + EVAL_SEED_OFFSET``
at every evaluation (the same start states for every agent and every evaluation of a seed).
Evaluation uses ``stable_baselines3.common.evaluation.evaluate_policy`` with deterministic
actions at step 0, every ``eval_every`` steps and at ``total_timesteps``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv

from .env_factory import make_env
from .registry import AgentSpec

EVAL_SEED_OFFSET = 1_000_000
Row = dict[str, Any]
Report = Callable[[int], None]


@dataclass
class Job:
    """What one job runs; its :meth:`identity` decides whether a saved result can be reused."""

    env_id: str
    agent: str
    seed: int
    total_timesteps: int
    eval_every: int
    eval_episodes: int
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_target: str = ""

    def label(self) -> str:
        """A short human-readable name, for progress bars and messages."""
        return f"{self.env_id} {self.agent} seed {self.seed}"

    def file_stem(self) -> str:
        """A file-name-safe key: environment, agent and seed."""
        safe_env = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.env_id)
        return f"{safe_env}__{self.agent}__seed{self.seed}"

    def identity(self) -> dict[str, Any]:
        """Every setting that changes the job's result, as JSON-able data."""
        return asdict(self)

    def eval_steps(self) -> list[int]:
        """The training steps after which the agent is evaluated."""
        steps = set(range(0, self.total_timesteps + 1, self.eval_every))
        steps.add(self.total_timesteps)
        return sorted(steps)


class _StepCounter(gym.Wrapper):
    """Counts environment steps taken by the agent and reports progress every so often."""

    def __init__(self, env: gym.Env, total: int, report: Report) -> None:
        super().__init__(env)
        self.steps = 0
        self._total = total
        self._report = report
        self._every = max(1, total // 200)

    def step(self, action: Any) -> Any:
        result = self.env.step(action)
        self.steps += 1
        if self.steps % self._every == 0 or self.steps == self._total:
            self._report(self.steps)
        return result


class _Recorder:
    """Evaluates the agent at the planned steps and keeps training wall time, evaluation excluded."""

    def __init__(self, job: Job, agent: Any, counter: _StepCounter) -> None:
        self.job = job
        self.agent = agent
        self.counter = counter
        self.rows: list[Row] = []
        self._planned = job.eval_steps()
        self._eval_env = DummyVecEnv([lambda: Monitor(make_env(job.env_id))])
        self._start = time.perf_counter()
        self._eval_seconds = 0.0

    def close(self) -> None:
        self._eval_env.close()

    def evaluate(self) -> None:
        """Evaluate now, at the counter's step."""
        began = time.perf_counter()
        self._eval_env.seed(self.job.seed + EVAL_SEED_OFFSET)
        mean, std = evaluate_policy(
            self.agent, self._eval_env, n_eval_episodes=self.job.eval_episodes, deterministic=True, warn=False
        )
        self.rows.append({
            "env": self.job.env_id,
            "agent": self.job.agent,
            "seed": self.job.seed,
            "step": self.counter.steps,
            "eval_return_mean": float(mean),
            "eval_return_std": float(std),
            "wall_time": round(began - self._start - self._eval_seconds, 3),
        })
        self._eval_seconds += time.perf_counter() - began

    def on_step(self) -> bool:
        """Evaluate if this step is planned; ``False`` once the budget is spent."""
        steps = self.counter.steps
        if steps in self._planned and (not self.rows or self.rows[-1]["step"] != steps):
            self.evaluate()
        return steps < self.job.total_timesteps

    def check_complete(self) -> None:
        """Raise unless every planned evaluation happened and the budget was spent exactly."""
        recorded = [row["step"] for row in self.rows]
        if self.counter.steps != self.job.total_timesteps or recorded != self._planned:
            raise RuntimeError(
                f"agent '{self.job.agent}' took {self.counter.steps} environment steps for a budget of "
                f"{self.job.total_timesteps} and was evaluated at steps {recorded[:5]}...; compare needs "
                "the exact budget (an agent registered with callback=True must call callback.on_step() "
                "once per environment step and stop when it returns False)"
            )


class _EvalCallback(BaseCallback):
    """SB3 callback that hands every environment step to the recorder."""

    def __init__(self, recorder: _Recorder) -> None:
        super().__init__(verbose=0)
        self._recorder = recorder

    def on_step(self) -> bool:
        self.n_calls += 1
        return self._recorder.on_step()

    def _on_step(self) -> bool:
        return True


def run_job(job: Job, spec: AgentSpec, report: Report | None = None, threads: int = 1) -> list[Row]:
    """Train and evaluate ``job``'s agent; returns the rows of ``results.csv`` for this job.

    ``report(steps)`` receives training progress. torch uses ``threads`` threads during the job.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(job, spec, report or (lambda steps: None))
    finally:
        torch.set_num_threads(previous_threads)


def _run(job: Job, spec: AgentSpec, report: Report) -> list[Row]:
    set_random_seed(job.seed)
    counter = _StepCounter(make_env(job.env_id), job.total_timesteps, report)
    train_env = Monitor(counter)
    train_env.reset(seed=job.seed)
    train_env.action_space.seed(job.seed)
    train_env.observation_space.seed(job.seed)
    agent = spec.build(train_env, job.seed, **job.agent_kwargs)
    recorder = _Recorder(job, agent, counter)
    try:
        recorder.evaluate()
        if spec.uses_callback():
            agent.learn(job.total_timesteps, callback=_EvalCallback(recorder))
        else:
            for target in job.eval_steps()[1:]:
                agent.learn(target - counter.steps)
                if counter.steps != target:
                    break
                recorder.evaluate()
        recorder.check_complete()
        return recorder.rows
    finally:
        recorder.close()
        train_env.close()
