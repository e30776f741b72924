"""``ActiveInferenceAgent``: EFE planning over a PC-learned dynamics ensemble, in SB3's shape."""

from __future__ import annotations

import io
import time
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from pcctrl.control import EFEPlanner, GoalPrior, RewardSpec
from pcctrl.errors import InvalidArgumentError, ShapeError
from pcctrl.estimation import PCFilter, Perception

from .action_hold import ActionHold
from .aif_checkpoint import load_agent, save_agent
from .aif_config import AIFConfig, default_config
from .env_factory import make_env
from .families import BeliefSpec, belief_spec
from .model_learner import ModelLearner
from .preferences import build_preference, reward_source
from .sb3_facade import SB3Facade


def _checked_env(env: gym.Env | str) -> gym.Env:
    if isinstance(env, str):
        env = make_env(env)
    if not isinstance(env, gym.Env):
        raise TypeError(f"env must be a gymnasium.Env or an env id, got {type(env).__name__}")
    for name, space in (("observation", env.observation_space), ("action", env.action_space)):
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise TypeError(f"ActiveInferenceAgent needs a 1-D Box {name} space, got {space}")
    act = env.action_space
    if not (np.isfinite(act.low).all() and np.isfinite(act.high).all()):
        raise InvalidArgumentError("env", f"the action space must have finite bounds, got {act}")
    return env


def _observations(obs: Any, obs_dim: int) -> tuple[np.ndarray, bool]:
    """``obs`` as a float64 ``(E, obs_dim)`` batch, and whether it was a single observation."""
    arr = np.asarray(obs, dtype=np.float64)
    single = arr.ndim == 1
    if single:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != obs_dim:
        raise ShapeError("observation", f"must have shape ({obs_dim},) or (n_envs, {obs_dim}), got {np.shape(obs)}")
    if not np.isfinite(arr).all():
        raise InvalidArgumentError("observation", "contains NaN or inf")
    return arr, single


def _episode_starts(episode_start: Any, rows: int) -> np.ndarray:
    starts = np.zeros(rows, dtype=bool) if episode_start is None else np.asarray(episode_start, dtype=bool).reshape(-1)
    if starts.shape[0] != rows:
        raise ShapeError("episode_start", f"has {starts.shape[0]} entries for {rows} observations")
    return starts


def _check_reward(reward: Any, step: int) -> None:
    if not np.isfinite(float(reward)):
        raise InvalidArgumentError("reward", f"the env returned a non-finite reward ({reward}) at step {step}")


def _perception(env: gym.Env, spec: BeliefSpec | None, device: torch.device) -> Perception:
    obs_dim = int(env.observation_space.shape[0])
    if spec is None:
        return Perception(obs_dim, device=device)
    return Perception(obs_dim, PCFilter(spec.model(env)), initial=spec.initial, features=spec.features,
                      feature_dim=spec.feature_dim, device=device)


def _on_draws(features: Tensor, perception: Perception, spec: BeliefSpec | None, cfg: AIFConfig,
              generator: torch.Generator) -> Tensor:
    """``features``, or ``cfg.members`` draws of each row's belief where ``cfg.belief_samples`` applies."""
    if spec is None or not cfg.belief_samples or cfg.members < 2:
        return features
    return perception.sample_features(cfg.members, generator)


def _planner(learner: ModelLearner, preference: Any, space: spaces.Box, cfg: AIFConfig,
             device: torch.device) -> EFEPlanner:
    return EFEPlanner(learner.planning_dynamics(), preference, torch.as_tensor(space.low),
                      torch.as_tensor(space.high), horizon=cfg.horizon, method=cfg.method,
                      candidates=cfg.candidates, iterations=cfg.iterations, elites=cfg.elites,
                      momentum=cfg.momentum, temperature=cfg.temperature, init_std=cfg.init_std,
                      epistemic_weight=cfg.epistemic_weight, discount=cfg.discount, seed=cfg.seed, device=device,
                      compile=cfg.compile_planner, noise_beta=cfg.noise_beta,
                      risk_aversion=cfg.risk_aversion, cuda_graph=_uses_cuda_graph(cfg, device))


def _uses_cuda_graph(cfg: AIFConfig, device: torch.device) -> bool:
    """``cfg.cuda_graph_planner``; where that is ``None``, whether ``device`` is CUDA and the planner not compiled."""
    if cfg.cuda_graph_planner is None:
        return device.type == "cuda" and not cfg.compile_planner
    return bool(cfg.cuda_graph_planner)


class ActiveInferenceAgent(SB3Facade):
    """Learns a dynamics ensemble with the PC core and acts by minimising expected free energy.

    ``env`` is a Gymnasium env or an env id (made with ``gym.make``); both spaces must be 1-D
    ``Box`` es with finite action bounds. The extrinsic value is ``r/tau`` from, in order: the
    ``reward`` argument (a :class:`RewardSpec`), a ``goal_prior``, the closed-form reward
    registered for the env id (:func:`pcctrl.control.closed_form_reward`), else a reward model
    learned with the PC core. Envs with a belief spec (:mod:`pcctrl.agents.families`: NoisyPendulum,
    PartialInvertedPendulum) are filtered by a :class:`PCFilter` and planned on its belief.
    ``config`` (or keyword overrides of :func:`default_config`) holds every hyperparameter.

    The agent composes its parts: ``perception`` (readings -> features), ``learner`` (ensemble,
    reward model, replay buffer), ``planner`` (:class:`EFEPlanner`) and ``hold`` (action repeat).
    """

    def __init__(self, env: gym.Env | str, config: AIFConfig | None = None, reward: RewardSpec | None = None,
                 goal_prior: GoalPrior | None = None, verbose: int = 0, device: str | torch.device = "cpu",
                 **overrides: Any) -> None:
        super().__init__(verbose)
        self.env = _checked_env(env)
        spec = getattr(self.env, "spec", None)
        self.env_id: str | None = None if spec is None else spec.id
        self.config = (config or default_config(self.env_id, env=self.env)).with_overrides(**overrides)
        self.device = torch.device(device)
        cfg, act = self.config, self.env.action_space
        self.obs_dim, self.action_dim = int(self.env.observation_space.shape[0]), int(act.shape[0])
        self.belief_spec = belief_spec(self.env_id)
        self.perception = _perception(self.env, self.belief_spec, self.device)
        self.goal_prior = goal_prior
        self.reward_source = reward_source(self.env_id, reward, goal_prior)
        self.learner = ModelLearner(self.feature_dim, self.action_dim, cfg,
                                    learn_reward=self.reward_source == "learned", action_low=act.low,
                                    action_high=act.high, device=self.device)
        preference = build_preference(self.reward_source, cfg, self.feature_dim, env_id=self.env_id, reward=reward,
                                      goal_prior=goal_prior, device=self.device,
                                      learned_reward=self.learner.learned_reward)
        self.planner = _planner(self.learner, preference, act, cfg, self.device)
        self.hold = ActionHold(cfg.action_repeat, self.action_dim, act.dtype)
        self.num_timesteps = 0
        self._rng = np.random.default_rng(cfg.seed)
        self._plan_ms: deque[float] = deque(maxlen=1000)
        self._reset_on_learn = True

    @property
    def feature_dim(self) -> int:
        """Size of what the model and planner see: the observation, or the belief's features."""
        return self.perception.feature_dim

    @property
    def ensemble(self) -> Any:
        """The PC-trained :class:`~pcctrl.DynamicsEnsemble`."""
        return self.learner.ensemble

    @property
    def reward_model(self) -> Any:
        """The PC-learned reward model (``None`` unless the reward source is ``"learned"``)."""
        return self.learner.reward_model

    @property
    def buffer(self) -> Any:
        """The replay buffer of (action-repeated) transitions."""
        return self.learner.buffer

    @property
    def n_updates(self) -> int:
        """Model learning steps taken so far."""
        return self.learner.n_updates

    @property
    def plan_latency_ms(self) -> float:
        """Mean planning time per control step over the last 1000 calls (NaN before any)."""
        return float(np.mean(self._plan_ms)) if self._plan_ms else float("nan")

    # ---- acting -----------------------------------------------------------------------------

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """``(action, state)`` for one observation ``(obs_dim,)`` or a batch ``(n_envs, obs_dim)``.

        ``episode_start`` (bools, one per env) resets the planner's warm start and, on partially
        observed envs, the belief. ``deterministic=False`` perturbs the planned first action with
        the search's final spread. ``state`` is passed through (the agent keeps its own). With
        ``action_repeat = k > 1`` each row plans once and returns that action for ``k`` calls
        (one per env step), restarting the count where ``episode_start`` is true.
        """
        obs, single = _observations(observation, self.obs_dim)
        starts = _episode_starts(episode_start, obs.shape[0])
        if self.planner.mean is not None and self.planner.mean.shape[0] == obs.shape[0] and starts.any():
            self.planner.reset(torch.as_tensor(starts, device=self.device))
        features = self.perception.step(obs, starts)
        need = self.hold.due(starts)
        if need.any():
            rows = None if need.all() else torch.as_tensor(need, device=self.device)
            self.hold.hold(need, self._plan(features, deterministic, rows))
        action = self.hold.take()
        self.perception.record_actions(action)
        return (action[0] if single else action), state

    def _plan(self, features: Tensor, deterministic: bool, rows: Tensor | None = None) -> np.ndarray:
        """Plan for every row of ``features`` (or the boolean ``rows``); records the latency."""
        start = time.perf_counter()
        features = _on_draws(features, self.perception, self.belief_spec, self.config, self.planner.generator)
        action = self.planner.plan(features, rows)
        if not deterministic:
            action = self.planner.sample_first(action, rows)
        self._plan_ms.append(1e3 * (time.perf_counter() - start))
        return action.cpu().numpy().astype(self.env.action_space.dtype)

    # ---- learning ---------------------------------------------------------------------------

    def train_model(self) -> float:
        """Refit the ensemble (and a learned reward) on the buffer; returns the last batch NLL."""
        nll = self.learner.fit()
        self.learner.fit_value(self.planner.preference.log_preference)
        self.learner.configure(self.planner)
        return nll

    def _begin_episode(self, seed: int | None = None) -> Tensor:
        obs, _ = _observations(self.env.reset(seed=seed)[0], self.obs_dim)
        self.planner.reset()
        return self.perception.step(obs, np.ones(1, dtype=bool))

    def _explore_or_plan(self, features: Tensor) -> np.ndarray:
        """A uniform random action until the model has data and a fit, then the planned one."""
        space = self.env.action_space
        if len(self.buffer) * self.config.action_repeat < self.config.learning_starts or self.n_updates == 0:
            return self._rng.uniform(space.low, space.high).astype(space.dtype)
        return self._plan(features, deterministic=True)[0]

    def _env_step(self, action: np.ndarray) -> tuple[Tensor, float, bool, bool, dict[str, Any]]:
        """Apply ``action``; the next features, reward, terminated, truncated and info."""
        self.perception.record_actions(action[None])
        new_obs, reward, terminated, truncated, info = self.env.step(action)
        _check_reward(reward, self.num_timesteps)
        features = self.perception.step(_observations(new_obs, self.obs_dim)[0], np.zeros(1, dtype=bool))
        return features, float(reward), bool(terminated), bool(truncated), info

    def learn(self, total_timesteps: int, callback: Any = None, log_interval: int = 1,
              progress_bar: bool = False, reset_num_timesteps: bool = True) -> "ActiveInferenceAgent":
        """Collect ``total_timesteps`` env steps: random for ``learning_starts``, then planned.

        Each action (random or planned) is held for ``action_repeat`` env steps and stored as one
        transition with the summed reward (a hold cut short by termination is stored, one cut
        short by truncation or the end of ``learn`` is not). The model is refitted at every
        episode end and every ``train_freq`` steps; SB3 callbacks see ``on_step`` after every env
        step (returning ``False`` stops training); the logger dumps every ``log_interval``
        episodes. A non-finite reward or observation raises ``InvalidArgumentError``
        (a ``ValueError``).
        """
        if int(total_timesteps) < 0:
            raise InvalidArgumentError("total_timesteps", f"must be non-negative, got {total_timesteps}")
        cfg = self.config
        if reset_num_timesteps:
            self.num_timesteps = 0
        total_timesteps = int(total_timesteps)
        callback = self._init_callback(callback, progress_bar)
        callback.on_training_start(locals(), globals())
        start_time, start_steps = time.time(), self.num_timesteps
        feat = self._begin_episode(seed=cfg.seed if self._reset_on_learn else None)
        self._reset_on_learn = False
        episodes, ep_return, ep_len, since_train = 0, 0.0, 0, 0
        hold_left, hold_reward, hold_start = 0, 0.0, feat
        callback.on_rollout_start()
        for _ in range(total_timesteps):
            if hold_left == 0:
                action = self._explore_or_plan(feat)
                hold_left, hold_reward, hold_start = cfg.action_repeat, 0.0, feat
            next_feat, reward, terminated, truncated, infos = self._env_step(action)
            hold_left, hold_reward = hold_left - 1, hold_reward + reward
            if hold_left == 0 or terminated:
                self.learner.add(hold_start[0], action, next_feat[0], hold_reward, terminated)
            self.num_timesteps += 1
            ep_return, ep_len, since_train = ep_return + reward, ep_len + 1, since_train + 1
            feat = next_feat
            done = terminated or truncated
            rewards, dones = np.array([reward]), np.array([done])  # noqa: F841 (callback locals)
            callback.update_locals(locals())
            if not callback.on_step():
                break
            if done:
                episodes += 1
                self._record_episode(ep_return, ep_len)
                ep_return, ep_len, hold_left = 0.0, 0, 0
                feat = self._begin_episode()
            if len(self.buffer) * cfg.action_repeat >= cfg.learning_starts and (done or since_train >= cfg.train_freq):
                self.learner.record(self._logger, self.train_model())
                since_train = 0
            if done and log_interval and episodes % log_interval == 0:
                extra = {"time/plan_ms": float(np.mean(self._plan_ms))} if self._plan_ms else {}
                self._record_rollout(start_time, start_steps, episodes, **extra)
        callback.on_rollout_end()
        callback.on_training_end()
        return self

    # ---- persistence ------------------------------------------------------------------------

    def save(self, path: str | Path | io.BufferedIOBase) -> None:
        """Write config, models, planner state and buffer in pcctrl's safe format (:mod:`pcctrl.checkpoint_io`)."""
        save_agent(self, path)

    @classmethod
    def load(cls, path: str | Path | io.BufferedIOBase, env: gym.Env | str | None = None,
             reward: RewardSpec | None = None, device: str | torch.device = "cpu",
             verbose: int = 0) -> "ActiveInferenceAgent":
        """Rebuild an agent from :meth:`save`; ``env`` defaults to ``gym.make`` of the saved id.

        Nothing is unpickled; a bad file raises :class:`~pcctrl.errors.CheckpointError`, spaces unlike
        ``env``'s ``ValueError``; a custom ``reward`` must be given again. pcctrl 0.1 files still load.
        """
        return load_agent(cls, path, env=env, reward=reward, device=device, verbose=verbose)
