"""``ReflexAgent``: a PC filter + reflex active-inference controller in the Stable-Baselines3 shape.

Made for ``pcctrl/ArmReach-v0`` (and any env whose goal is a joint-space set-point): the
target seen in the observation is turned into joint angles by the arm's inverse kinematics,
a PC filter on a per-joint double-integrator model estimates angles and velocities from the
noisy encoders (NaN readings coast), and a :class:`~pcctrl.control.reflex.ReflexController`
acts on the belief. There is nothing to learn: ``learn`` rolls the controller out and logs
episode returns, so SB3 training loops and ``evaluate_policy`` work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.logger import Logger, configure

from pcctrl.checkpoint_io import read_checkpoint, write_checkpoint
from pcctrl.control.reflex import ReflexController
from pcctrl.errors import CheckpointError, InvalidArgumentError
from pcctrl.estimation import PCFilter
from pcctrl.models import LinearGaussianModel
from pcctrl.runtime.checkpoint import object_to_tree, tree_to_object
from pcctrl.runtime.filter_reflex import FilterReflexController

CHECKPOINT_KIND = "pcctrl.agents.ReflexAgent"
LINK_LENGTHS = (0.3, 0.25)
# Gear / effective inertia of shoulder and elbow (N m per unit action / kg m^2), from the arm's geometry.
ARM_ACTION_GAIN = (15.0, 60.0)
DEFAULT_GAINS = {"sensory_precision": [[3.0, 1.5], [2.0, 1.0], [0.2, 0.05]], "action_gain": 1.0}


def arm_joint_goal(target: np.ndarray, q: np.ndarray, elbow_limit: float = 2.8) -> np.ndarray:
    """Joint angles putting the fingertip at ``target`` (x, y): the IK branch and shoulder turn nearest ``q``."""
    l1, l2 = LINK_LENGTHS
    x, y = float(target[0]), float(target[1])
    c2 = np.clip((x * x + y * y - l1 * l1 - l2 * l2) / (2 * l1 * l2), -1.0, 1.0)
    best = None
    for sign in (1.0, -1.0):
        q2 = float(np.clip(sign * np.arccos(c2), -elbow_limit, elbow_limit))
        q1 = np.arctan2(y, x) - np.arctan2(l2 * np.sin(q2), l1 + l2 * np.cos(q2))
        q1 = q[0] + (q1 - q[0] + np.pi) % (2 * np.pi) - np.pi
        cand = np.array([q1, q2])
        if best is None or np.abs(cand - q).sum() < np.abs(best - q).sum():
            best = cand
    return best


def arm_filter_model(dt: float, obs_noise_std: float = 0.01, accel_noise_std: float = 30.0,
                     damping: float = 1.5) -> LinearGaussianModel:
    """Per-joint ``[q, dq]`` model, ``ddq = gain * a - damping * dq`` plus white acceleration noise."""
    eye, zero = np.eye(2), np.zeros((2, 2))
    A = np.block([[eye, dt * eye], [zero, (1.0 - damping * dt) * eye]])
    B = np.vstack([0.5 * dt * dt * np.diag(ARM_ACTION_GAIN), dt * np.diag(ARM_ACTION_GAIN)])
    q = accel_noise_std ** 2
    Q = np.block([[q * dt ** 3 / 3 * eye, q * dt ** 2 / 2 * eye], [q * dt ** 2 / 2 * eye, q * dt * eye]])
    return LinearGaussianModel(A, B, np.hstack([eye, zero]), Q, obs_noise_std ** 2)


def arm_controller(dt: float, goal: Any = (0.0, 0.0), obs_noise_std: float = 0.01, iters: int = 1,
                   **reflex_kwargs: Any) -> FilterReflexController:
    """Filter + reflex controller for the ArmReach arm at control period ``dt`` (action in [-1, 1])."""
    kwargs = {**DEFAULT_GAINS, "order": 3, "sensed_orders": 2, "prior_precision": 1.0, "alpha": 1.0,
              "perception_lr": 0.0, "iters": iters, "action_low": -1.0, "action_high": 1.0, **reflex_kwargs}
    reflex = ReflexController(np.asarray(goal, dtype=np.float64), dt=dt, **kwargs)
    filt = PCFilter(arm_filter_model(dt, obs_noise_std))
    return FilterReflexController(filt, reflex, initial_cov=np.diag([0.05, 0.05, 0.5, 0.5]))


class ReflexAgent:
    """SB3-shaped agent: ``learn``, ``predict``, ``save``, ``load``; ``controller`` is the runtime controller.

    ``goal``: ``None`` reads the target from the last two observation entries and converts it to
    joint angles (ArmReach); an array is a fixed joint-space goal; a callable maps
    ``(obs, belief_mean) -> goal``. ``joint_obs`` are the observation entries the filter reads.
    """

    def __init__(self, env: gym.Env | None, goal: Any = None, joint_obs: Any = (0, 1), dt: float | None = None,
                 seed: int | None = None, verbose: int = 0, **controller_kwargs: Any) -> None:
        if dt is None:
            if env is None:
                raise ValueError("dt is required when env is None")
            dt = float(env.unwrapped.dt)
        self.env, self.dt, self.seed, self.verbose = env, float(dt), seed, verbose
        self.goal = goal
        self.joint_obs = np.asarray(joint_obs, dtype=np.int64)
        self.controller_kwargs = controller_kwargs
        self.controller = arm_controller(self.dt, **controller_kwargs)
        self.num_timesteps = 0
        self._started = False
        self._target = np.full(2, np.nan)
        self._logger: Logger | None = None

    @property
    def logger(self) -> Logger:
        """SB3 logger (stdout only unless :meth:`set_logger` is called)."""
        if self._logger is None:
            self._logger = configure(None, ["stdout"] if self.verbose else [""])
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        """Use an SB3 logger (e.g. ``stable_baselines3.common.logger.configure(folder, formats)``)."""
        self._logger = logger

    def _goal(self, obs: np.ndarray, q: np.ndarray) -> np.ndarray:
        if self.goal is None:
            # The IK branch is chosen when the target appears and kept: switching mid-reach jumps the goal.
            self._target = np.array(obs[-2:], dtype=np.float64)
            return arm_joint_goal(self._target, q)
        if callable(self.goal):
            return np.asarray(self.goal(obs, self.controller.filter.belief.mean.numpy()), dtype=np.float64)
        return np.asarray(self.goal, dtype=np.float64)

    def _act(self, obs: np.ndarray, start: bool) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        if obs.ndim != 1:
            raise ValueError(f"ReflexAgent acts on one observation at a time, got shape {obs.shape}")
        joints = obs[self.joint_obs]
        if start or not self._started:
            # The goal first: a reset starts the beliefs at the goal prior.
            self.controller.reflex.set_goal(self._goal(obs, joints))
            self.controller.reset(joints)
            self._started = True
        elif self.goal is not None or not np.array_equal(obs[-2:], self._target):
            self.controller.reflex.set_goal(self._goal(obs, self.controller.filter.belief.mean.numpy()[:2]))
        if start:
            return self.controller.reflex.action.astype(np.float32)
        return self.controller.step(joints).astype(np.float32)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """The action for ``observation`` (one env); ``episode_start`` true resets the controller."""
        start = bool(np.asarray(episode_start).reshape(-1)[0]) if episode_start is not None else False
        obs = np.asarray(observation)
        if obs.ndim == 2 and obs.shape[0] == 1:
            return self._act(obs[0], start)[None], state
        return self._act(obs, start), state

    def learn(self, total_timesteps: int, callback: Callable[[dict, dict], Any] | None = None,
              progress_bar: bool = False, log_interval: int = 1) -> "ReflexAgent":
        """Roll out ``total_timesteps`` env steps (nothing is trained) and log episode returns."""
        if self.env is None:
            raise ValueError("learn needs an env")
        obs, _ = self.env.reset(seed=self.seed)
        action = self._act(obs, True)
        ret, episodes = 0.0, 0
        for _ in range(int(total_timesteps)):
            obs, reward, terminated, truncated, _ = self.env.step(action)
            self.num_timesteps += 1
            ret += float(reward)
            if callback is not None and callback(locals(), globals()) is False:
                break
            if terminated or truncated:
                episodes += 1
                if episodes % log_interval == 0:
                    self.logger.record("rollout/ep_rew", ret)
                    self.logger.record("time/total_timesteps", self.num_timesteps)
                    self.logger.dump(self.num_timesteps)
                ret = 0.0
                obs, _ = self.env.reset()
                action = self._act(obs, True)
            else:
                action = self._act(obs, False)
        return self

    def save(self, path: str | Path) -> None:
        """Write the configuration and the controller (beliefs included), not the env, as a safe checkpoint.

        A callable ``goal`` is code, which a checkpoint does not hold: pass it again to :meth:`load`.
        """
        tree = object_to_tree(self.controller, path)
        if callable(self.goal):
            goal: Any = "callable"
        else:
            goal = None if self.goal is None else np.asarray(self.goal, dtype=np.float64)
        write_checkpoint(path, CHECKPOINT_KIND, {
            "dt": self.dt, "goal": goal, "joint_obs": self.joint_obs.copy(), "seed": self.seed,
            "controller_kwargs": dict(self.controller_kwargs), "controller": tree, "started": self._started,
            "num_timesteps": self.num_timesteps, "target": self._target.copy()})

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | None = None, goal: Any = None) -> "ReflexAgent":
        """Restore a :meth:`save` file (safe for files of any origin: nothing is unpickled).

        Raises :class:`~pcctrl.errors.CheckpointError` naming the file for a missing, empty,
        truncated, corrupt, tampered, foreign or old-format (pickle) file. ``goal`` is needed (and
        only allowed) when the saved agent's goal was a callable.
        """
        _, data = read_checkpoint(path, CHECKPOINT_KIND)
        saved_goal = data.get("goal") if isinstance(data, dict) else None
        if not (saved_goal is None or isinstance(saved_goal, np.ndarray) or saved_goal == "callable"):
            raise CheckpointError(path, f"has a goal of type {type(saved_goal).__name__}")
        if isinstance(saved_goal, str):
            if not callable(goal):
                raise InvalidArgumentError("goal", "the saved agent's goal was a callable: pass goal= to load")
            saved_goal = goal
        elif goal is not None:
            raise InvalidArgumentError("goal", "the saved agent has its own goal; goal= is only for callables")
        try:
            controller = tree_to_object(data["controller"], path)
            if not isinstance(controller, FilterReflexController):
                raise CheckpointError(path, f"stores a {type(controller).__name__}, not a FilterReflexController")
            agent = cls(env, goal=saved_goal, joint_obs=data["joint_obs"], dt=float(data["dt"]), seed=data["seed"],
                        **data["controller_kwargs"])
            target = np.asarray(data["target"], dtype=np.float64)
            if target.shape != (2,):
                raise CheckpointError(path, f"has a target of shape {target.shape}, expected (2,)")
            agent.controller, agent._started = controller, bool(data["started"])
            agent.num_timesteps, agent._target = int(data["num_timesteps"]), target
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(path, f"does not describe a ReflexAgent ({type(exc).__name__}: {exc})") from None
        return agent
