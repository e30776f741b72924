"""``ActiveInferenceAgent``: EFE planning over a PC-learned dynamics ensemble, in SB3's shape."""

from __future__ import annotations

import dataclasses
import io
import math
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import Tensor

from pcctrl.control import EFEPlanner, GoalPrior, RewardPreference, RewardSpec, SummedPreference, closed_form_reward
from pcctrl.estimation import PCFilter
from pcctrl.models import StateSpaceModel, pendulum_model
from pcctrl.models.dynamics_ensemble import DynamicsEnsemble
from pcctrl.models.replay import ReplayBuffer
from pcctrl.models.reward_model import RewardModel

from .aif_config import AIFConfig, default_config

FORMAT = "pcctrl.ActiveInferenceAgent"
VERSION = 1


@dataclass(frozen=True)
class BeliefSpec:
    """How to act on a partially observed env: a filter model and the features planned on.

    ``model(env)`` builds the :class:`StateSpaceModel` of a :class:`PCFilter`; ``initial(obs)``
    gives the first belief ``(mean, cov)`` from the first reading; ``features(mean)`` maps belief
    means ``(B, n)`` to the ``feature_dim`` features the dynamics model and reward see.
    """

    model: Callable[[gym.Env], StateSpaceModel]
    initial: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    features: Callable[[Tensor], Tensor]
    feature_dim: int


def _pendulum_filter_model(env: gym.Env) -> StateSpaceModel:
    base = env.unwrapped
    return pendulum_model(obs_noise_std=float(getattr(base, "obs_noise_std", 0.1)),
                          process_noise_std=float(getattr(base, "process_noise_std", 0.0)),
                          g=float(getattr(base, "g", 10.0)), dtype=torch.float64)


def _pendulum_initial(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Start at the reading's angle: from theta = 0 a Gauss-Newton step cannot reach theta = pi.
    return np.array([math.atan2(float(obs[1]), float(obs[0])), 0.0]), np.diag([0.1, 1.0])


def _pendulum_features(mean: Tensor) -> Tensor:
    return torch.stack((torch.cos(mean[:, 0]), torch.sin(mean[:, 0]), mean[:, 1]), -1)


BELIEF_SPECS: dict[str, BeliefSpec] = {
    "pcctrl/NoisyPendulum-v0": BeliefSpec(_pendulum_filter_model, _pendulum_initial, _pendulum_features, 3),
}


class _TqdmCallback(BaseCallback):
    """SB3-style progress bar on tqdm (SB3's own needs ``rich``)."""

    def _on_training_start(self) -> None:
        from tqdm.auto import tqdm

        self.pbar = tqdm(total=self.locals["total_timesteps"], desc="ActiveInferenceAgent")

    def _on_step(self) -> bool:
        self.pbar.update(1)
        return True

    def _on_training_end(self) -> None:
        self.pbar.close()


def _env_id(env: gym.Env) -> str | None:
    spec = getattr(env, "spec", None)
    return None if spec is None else spec.id


class ActiveInferenceAgent:
    """Learns a dynamics ensemble with the PC core and acts by minimising expected free energy.

    ``env`` is a Gymnasium env or an env id (made with ``gym.make``); both spaces must be 1-D
    ``Box`` es with finite action bounds. The extrinsic value is ``r/tau`` from, in order: the
    ``reward`` argument (a :class:`RewardSpec`), a ``goal_prior``, the closed-form reward
    registered for the env id (:func:`pcctrl.control.closed_form_reward`), else a reward model
    learned with the PC core. Envs listed in ``BELIEF_SPECS`` (``pcctrl/NoisyPendulum-v0``) are
    filtered by a :class:`PCFilter` and planned on its belief. ``config`` (or keyword overrides of
    :func:`default_config`) holds every hyperparameter.
    """

    def __init__(self, env: gym.Env | str, config: AIFConfig | None = None, reward: RewardSpec | None = None,
                 goal_prior: GoalPrior | None = None, verbose: int = 0, device: str | torch.device = "cpu",
                 **overrides: Any) -> None:
        if isinstance(env, str):
            env = gym.make(env)
        if not isinstance(env, gym.Env):
            raise TypeError(f"env must be a gymnasium.Env or an env id, got {type(env).__name__}")
        for name, space in (("observation", env.observation_space), ("action", env.action_space)):
            if not isinstance(space, spaces.Box) or len(space.shape) != 1:
                raise TypeError(f"ActiveInferenceAgent needs a 1-D Box {name} space, got {space}")
        act = env.action_space
        if not (np.isfinite(act.low).all() and np.isfinite(act.high).all()):
            raise ValueError(f"the action space must have finite bounds, got {act}")
        if reward is not None and goal_prior is not None:
            raise ValueError("give either reward or goal_prior, not both")
        self.env = env
        self.env_id = _env_id(env)
        self.config = (config or default_config(self.env_id)).with_overrides(**overrides)
        self.verbose, self.device = verbose, torch.device(device)
        self.obs_dim = int(env.observation_space.shape[0])
        self.action_dim = int(act.shape[0])
        self.belief_spec = BELIEF_SPECS.get(self.env_id or "")
        self.feature_dim = self.belief_spec.feature_dim if self.belief_spec else self.obs_dim
        cfg = self.config
        self.ensemble = DynamicsEnsemble(self.feature_dim, self.action_dim, cfg.members, tuple(cfg.hidden),
                                         cfg.trainer, cfg.T, cfg.x_lr, cfg.lr, cfg.weight_decay, cfg.batch_size,
                                         seed=cfg.seed).to(self.device)
        self.goal_prior = goal_prior
        self.reward_model: RewardModel | None = None
        if reward is not None:
            self.reward_source, spec = "custom", reward
        elif goal_prior is not None:
            self.reward_source, spec = "goal_prior", None
        elif closed_form_reward(self.env_id) is not None:
            self.reward_source, spec = "closed_form", closed_form_reward(self.env_id)
        else:
            self.reward_source, spec = "learned", None
            # The reward model always learns by PC; under the "bp" ablation it uses Z-IL.
            algorithm = "exact" if cfg.trainer == "bp" else cfg.trainer
            self.reward_model = RewardModel(self.feature_dim, self.action_dim, tuple(cfg.reward_hidden),
                                            algorithm=algorithm, seed=cfg.seed).to(self.device)
        if goal_prior is not None:
            preference: Any = goal_prior.to(self.device)
        elif spec is not None:
            preference = RewardPreference.from_spec(spec, cfg.tau, cfg.action_repeat)
        else:
            # The reward model learns the summed reward of each (action-repeated) buffer step.
            preference = RewardPreference(self._learned_reward, cfg.tau)
        if cfg.goal is not None and goal_prior is None:
            if cfg.goal_precision is None or len(cfg.goal) != self.feature_dim \
                    or len(cfg.goal_precision) != self.feature_dim:
                raise ValueError(f"config goal and goal_precision need {self.feature_dim} entries each, "
                                 f"got {cfg.goal} and {cfg.goal_precision}")
            prior = GoalPrior(cfg.goal, list(cfg.goal_precision)).to(self.device)
            preference = SummedPreference(preference, prior)
        self.planner = EFEPlanner(self.ensemble.planning_dynamics(cfg.epistemic_weight > 0), preference,
                                  torch.as_tensor(act.low), torch.as_tensor(act.high), cfg.horizon, cfg.method,
                                  cfg.candidates, cfg.iterations, cfg.elites, cfg.momentum, cfg.temperature,
                                  cfg.init_std, cfg.epistemic_weight, cfg.discount, cfg.seed, self.device)
        self.buffer = ReplayBuffer(self.feature_dim, self.action_dim, cfg.buffer_size)
        self.num_timesteps = 0
        self.n_updates = 0
        self._rng = np.random.default_rng(cfg.seed)
        self._filters: list[PCFilter] = []
        self._last_actions: np.ndarray | None = None
        self._held: np.ndarray | None = None  # predict's held actions (n_envs, a) under action_repeat
        self._hold_left: np.ndarray | None = None  # env steps each row still holds its action
        self._vec_env: DummyVecEnv | None = None
        self._logger = Logger(None, [HumanOutputFormat(sys.stdout)] if verbose else [])
        self._episode_returns: deque[float] = deque(maxlen=100)
        self._episode_lengths: deque[int] = deque(maxlen=100)
        self._plan_ms: deque[float] = deque(maxlen=1000)
        self._reset_on_learn = True

    # ---- SB3 plumbing -----------------------------------------------------------------------

    @property
    def logger(self) -> Logger:
        """SB3 logger (``set_logger(stable_baselines3.common.logger.configure(...))`` to change it)."""
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        """Use ``logger`` for training output."""
        self._logger = logger

    def get_env(self) -> DummyVecEnv:
        """The training env as a one-env VecEnv (for SB3 callbacks)."""
        if self._vec_env is None:
            self._vec_env = DummyVecEnv([lambda: self.env])
        return self._vec_env

    def get_vec_normalize_env(self) -> None:
        """No observation normalisation wrapper (normalisation lives in the model)."""
        return None

    def dump_logs(self) -> None:
        """Write the recorded values to the logger's outputs."""
        self._logger.dump(self.num_timesteps)

    # ---- observation handling ---------------------------------------------------------------

    def _check_obs(self, obs: Any) -> tuple[np.ndarray, bool]:
        arr = np.asarray(obs, dtype=np.float64)
        single = arr.ndim == 1
        if single:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.obs_dim:
            raise ValueError(f"observation must have shape ({self.obs_dim},) or (n_envs, {self.obs_dim}), "
                             f"got {np.shape(obs)}")
        if not np.isfinite(arr).all():
            raise ValueError("observation contains NaN or inf")
        return arr, single

    def _features(self, obs: np.ndarray, episode_start: np.ndarray) -> Tensor:
        """Features planned on: the observation itself, or the PC filter's belief."""
        if self.belief_spec is None:
            return torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        spec = self.belief_spec
        if len(self._filters) != obs.shape[0]:
            self._filters = [PCFilter(spec.model(self.env)) for _ in range(obs.shape[0])]
            episode_start = np.ones(obs.shape[0], dtype=bool)
            self._last_actions = None
        means = []
        for i, filt in enumerate(self._filters):
            if episode_start[i] or self._last_actions is None:
                filt.reset(*spec.initial(obs[i]))
                belief = filt.correct(obs[i])
            else:
                belief = filt.update(obs[i], self._last_actions[i])
            means.append(belief.mean)
        return spec.features(torch.stack(means)).to(self.device, torch.float32)

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
        obs, single = self._check_obs(observation)
        starts = np.zeros(obs.shape[0], dtype=bool) if episode_start is None else \
            np.asarray(episode_start, dtype=bool).reshape(-1)
        if starts.shape[0] != obs.shape[0]:
            raise ValueError(f"episode_start has {starts.shape[0]} entries for {obs.shape[0]} observations")
        if self.planner.mean is not None and self.planner.mean.shape[0] == obs.shape[0] and starts.any():
            self.planner.reset(torch.as_tensor(starts, device=self.device))
        features = self._features(obs, starts)
        n = obs.shape[0]
        if self._held is None or self._hold_left is None or self._held.shape[0] != n:
            self._held = np.zeros((n, self.action_dim), dtype=self.env.action_space.dtype)
            self._hold_left = np.zeros(n, dtype=np.int64)
        need = starts | (self._hold_left <= 0)
        if need.any():
            rows = None if need.all() else torch.as_tensor(need, device=self.device)
            self._held[need] = self._act(features, deterministic, rows)
            self._hold_left[need] = self.config.action_repeat
        self._hold_left -= 1
        action = self._held.copy()
        self._last_actions = action.astype(np.float64)
        return (action[0] if single else action), state

    def _act(self, features: Tensor, deterministic: bool, rows: Tensor | None = None) -> np.ndarray:
        """Plan for every row of ``features`` (or the boolean ``rows``); records the latency."""
        start = time.perf_counter()
        action = self.planner.plan(features, rows)
        if not deterministic:
            action = self.planner.sample_first(action, rows)
        self._plan_ms.append(1e3 * (time.perf_counter() - start))
        out = action.cpu().numpy().astype(self.env.action_space.dtype)
        if rows is None:
            self._last_actions = out.astype(np.float64)
        return out

    # ---- learning ---------------------------------------------------------------------------

    def _learned_reward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        assert self.reward_model is not None
        return self.reward_model(obs, action, next_obs)

    def train_model(self) -> float:
        """Refit the ensemble (and a learned reward) on the buffer; returns the last batch NLL."""
        cfg = self.config
        data = self.buffer.all(self.device)
        losses = self.ensemble.fit(data.obs, data.actions, data.next_obs, cfg.train_steps)
        if self.reward_model is not None:
            self.reward_model.fit(data.obs, data.actions, data.next_obs, data.rewards, cfg.reward_train_steps)
        self.planner.dynamics = self.ensemble.planning_dynamics(cfg.epistemic_weight > 0)
        self.n_updates += cfg.train_steps
        return losses[-1] if losses else float("nan")

    def _init_callback(self, callback: Any, progress_bar: bool) -> BaseCallback:
        if isinstance(callback, list):
            callback = CallbackList(callback)
        if not isinstance(callback, BaseCallback):
            callback = ConvertCallback(callback)
        if progress_bar:
            callback = CallbackList([callback, _TqdmCallback()])
        callback.init_callback(self)  # type: ignore[arg-type]
        return callback

    def learn(self, total_timesteps: int, callback: Any = None, log_interval: int = 1,
              progress_bar: bool = False, reset_num_timesteps: bool = True) -> "ActiveInferenceAgent":
        """Collect ``total_timesteps`` env steps: random for ``learning_starts``, then planned.

        Each action (random or planned) is held for ``action_repeat`` env steps and stored as one
        transition with the summed reward (a hold cut short by termination is stored, one cut
        short by truncation or the end of ``learn`` is not). The model is refitted at every
        episode end and every ``train_freq`` steps; SB3 callbacks
        see ``on_step`` after every env step (returning ``False`` stops training); the logger dumps
        every ``log_interval`` episodes. A non-finite reward or observation raises ``ValueError``.
        """
        if int(total_timesteps) < 0:
            raise ValueError(f"total_timesteps must be non-negative, got {total_timesteps}")
        cfg, env = self.config, self.env
        if reset_num_timesteps:
            self.num_timesteps = 0
        total_timesteps = int(total_timesteps)
        callback = self._init_callback(callback, progress_bar)
        callback.on_training_start(locals(), globals())
        start_time, start_steps = time.time(), self.num_timesteps
        obs_raw, _ = env.reset(seed=cfg.seed if self._reset_on_learn else None)
        self._reset_on_learn = False
        obs, _ = self._check_obs(obs_raw)
        self.planner.reset()
        feat = self._features(obs, np.ones(1, dtype=bool))
        episodes, ep_return, ep_len, since_train = 0, 0.0, 0, 0
        repeat, hold_left, hold_reward, hold_start = cfg.action_repeat, 0, 0.0, feat
        callback.on_rollout_start()
        for _ in range(total_timesteps):
            if hold_left == 0:
                if len(self.buffer) * repeat < cfg.learning_starts or self.n_updates == 0:
                    action = self._rng.uniform(env.action_space.low, env.action_space.high).astype(env.action_space.dtype)
                    self._last_actions = action[None].astype(np.float64)
                else:
                    action = self._act(feat, deterministic=True)[0]
                hold_left, hold_reward, hold_start = repeat, 0.0, feat
            new_obs, reward, terminated, truncated, infos = env.step(action)
            if not np.isfinite(float(reward)):
                raise ValueError(f"the env returned a non-finite reward ({reward}) at step {self.num_timesteps}")
            obs, _ = self._check_obs(new_obs)
            next_feat = self._features(obs, np.zeros(1, dtype=bool))
            hold_left -= 1
            hold_reward += float(reward)
            if hold_left == 0 or terminated:
                self.buffer.add(hold_start[0].cpu().numpy(), action, next_feat[0].cpu().numpy(), hold_reward,
                                bool(terminated))
            self.num_timesteps += 1
            ep_return += float(reward)
            ep_len += 1
            since_train += 1
            feat = next_feat
            done = terminated or truncated
            rewards, dones = np.array([reward]), np.array([done])  # noqa: F841 (callback locals)
            callback.update_locals(locals())
            if not callback.on_step():
                break
            if done:
                episodes += 1
                self._episode_returns.append(ep_return)
                self._episode_lengths.append(ep_len)
                ep_return, ep_len = 0.0, 0
                obs_raw, _ = env.reset()
                obs, _ = self._check_obs(obs_raw)
                self.planner.reset()
                feat = self._features(obs, np.ones(1, dtype=bool))
                hold_left = 0
            if len(self.buffer) * repeat >= cfg.learning_starts and (done or since_train >= cfg.train_freq):
                nll = self.train_model()
                since_train = 0
                self._logger.record("train/model_nll", nll)
                self._logger.record("train/n_updates", self.n_updates)
            if done and log_interval and episodes % log_interval == 0:
                self._record_rollout(start_time, start_steps, episodes)
        callback.on_rollout_end()
        callback.on_training_end()
        return self

    def _record_rollout(self, start_time: float, start_steps: int, episodes: int) -> None:
        log = self._logger
        log.record("rollout/ep_rew_mean", float(np.mean(self._episode_returns)))
        log.record("rollout/ep_len_mean", float(np.mean(self._episode_lengths)))
        log.record("time/episodes", episodes, exclude="tensorboard")
        elapsed = max(time.time() - start_time, 1e-9)
        log.record("time/fps", int((self.num_timesteps - start_steps) / elapsed))
        log.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        if self._plan_ms:
            log.record("time/plan_ms", float(np.mean(self._plan_ms)))
        log.dump(self.num_timesteps)

    @property
    def plan_latency_ms(self) -> float:
        """Mean planning time per control step over the last 1000 calls (NaN before any)."""
        return float(np.mean(self._plan_ms)) if self._plan_ms else float("nan")

    # ---- persistence ------------------------------------------------------------------------

    def _payload(self) -> dict[str, Any]:
        space = self.env.observation_space
        config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self.config).items()}
        return {
            "format": FORMAT, "version": VERSION, "config": config, "env_id": self.env_id,
            "obs_dim": self.obs_dim, "action_dim": self.action_dim,
            "obs_low": torch.as_tensor(space.low), "obs_high": torch.as_tensor(space.high),
            "action_low": torch.as_tensor(self.env.action_space.low),
            "action_high": torch.as_tensor(self.env.action_space.high),
            "reward_source": self.reward_source, "num_timesteps": self.num_timesteps, "n_updates": self.n_updates,
            "ensemble": self.ensemble.state_dict(), "optimizer": self.ensemble.optimizer.state_dict(),
            "reward_model": None if self.reward_model is None else self.reward_model.state_dict(),
            "goal_prior": None if self.goal_prior is None else
            {"goal": self.goal_prior.goal, "precision": self.goal_prior.precision,
             "action_precision": self.goal_prior.action_precision},
            "planner": self.planner.state_dict(), "buffer": self.buffer.state_dict(),
            "hold": None if self._held is None else
            {"actions": torch.as_tensor(self._held), "left": torch.as_tensor(self._hold_left)},
        }

    def save(self, path: str | Path | io.BufferedIOBase) -> None:
        """Write model, normalisers, reward model, planner settings and state, and the buffer.

        The file is pcctrl's safe checkpoint format (:mod:`pcctrl.checkpoint_io`); a path is written atomically.
        """
        from pcctrl.checkpoint_io import write_checkpoint

        with torch.no_grad():
            write_checkpoint(path, FORMAT, self._payload())

    @classmethod
    def load(cls, path: str | Path | io.BufferedIOBase, env: gym.Env | str | None = None,
             reward: RewardSpec | None = None, device: str | torch.device = "cpu",
             verbose: int = 0) -> "ActiveInferenceAgent":
        """Rebuild an agent from :meth:`save`; ``env`` defaults to ``gym.make`` of the saved id.

        Safe for files of any origin: nothing is unpickled. A file that is not a readable agent of
        this version raises :class:`~pcctrl.errors.CheckpointError` (a ``ValueError``) naming it;
        spaces that differ from ``env``'s raise ``ValueError``; a custom ``reward`` must be given
        again (functions are not saved). Files of pcctrl 0.1 (``torch.save``) are still read, with
        ``weights_only=True`` (no code runs); re-save them to get the current format.
        """
        from pcctrl.checkpoint_io import is_torch_zip, read_bytes, read_checkpoint
        from pcctrl.errors import CheckpointError

        name, raw = read_bytes(path)
        if is_torch_zip(raw):
            try:
                data = torch.load(io.BytesIO(raw), map_location=device, weights_only=True)
            except Exception as exc:  # torch raises many types for a corrupt or unsafe file
                raise CheckpointError(name, f"is not a readable ActiveInferenceAgent file: {exc}") from None
        else:
            try:
                _, data = read_checkpoint(name, FORMAT, device=device, data=raw)
            except CheckpointError as exc:
                raise CheckpointError(name, f"is not a readable ActiveInferenceAgent file: {exc.problem}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(name, "is not an ActiveInferenceAgent file")
        if data.get("version") != VERSION:
            raise CheckpointError(name, f"has format version {data.get('version')}, this pcctrl reads {VERSION}")
        try:
            obs_dim, action_dim = int(data["obs_dim"]), int(data["action_dim"])
            action_low, action_high = np.asarray(data["action_low"]), np.asarray(data["action_high"])
            source, env_id = data["reward_source"], data["env_id"]
            config = AIFConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data["config"].items()})
            goal = None if data["goal_prior"] is None else GoalPrior(**data["goal_prior"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(name, f"does not describe an ActiveInferenceAgent ({type(exc).__name__}: {exc})") \
                from None
        if env is None:
            if env_id is None:
                raise ValueError("the saved agent has no env id: pass env")
            env = gym.make(env_id)
        elif isinstance(env, str):
            env = gym.make(env)
        obs_space, act_space = env.observation_space, env.action_space
        if not (isinstance(obs_space, spaces.Box) and isinstance(act_space, spaces.Box)
                and obs_space.shape == (obs_dim,) and act_space.shape == (action_dim,)
                and action_low.shape == act_space.shape and action_high.shape == act_space.shape
                and np.allclose(act_space.low, action_low) and np.allclose(act_space.high, action_high)):
            raise ValueError(f"the env's spaces ({obs_space}, {act_space}) do not match the saved agent's "
                             f"(obs dim {obs_dim}, action bounds {action_low.tolist()}..{action_high.tolist()})")
        if source == "custom" and reward is None:
            raise ValueError("the saved agent used a custom reward: pass reward=RewardSpec(...) to load")
        agent = cls(env, config, reward=reward if source == "custom" else None, goal_prior=goal,
                    verbose=verbose, device=device)
        if agent.reward_source != source:
            raise ValueError(f"the saved agent's reward source is {source!r}, this env gives {agent.reward_source!r}")
        try:
            agent.ensemble.load_state_dict(data["ensemble"])
            agent.ensemble.optimizer.load_state_dict(data["optimizer"])
            if agent.reward_model is not None:
                agent.reward_model.load_state_dict(data["reward_model"])
            agent.buffer.load_state_dict(data["buffer"])
            agent.planner.dynamics = agent.ensemble.planning_dynamics(config.epistemic_weight > 0)
            agent.planner.load_state_dict(data["planner"])
            hold = data.get("hold")
            if hold is not None:
                agent._held = np.asarray(hold["actions"].cpu().numpy(), dtype=act_space.dtype)
                agent._hold_left = np.asarray(hold["left"].cpu().numpy(), dtype=np.int64)
            agent.num_timesteps, agent.n_updates = int(data["num_timesteps"]), int(data["n_updates"])
        except (RuntimeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise CheckpointError(name, f"does not match the agent it describes: {exc}") from None
        return agent
