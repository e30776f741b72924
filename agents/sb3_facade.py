"""``SB3Facade``: the Stable-Baselines3 plumbing a pcctrl agent shares (logger, VecEnv, callbacks)."""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.vec_env import DummyVecEnv


class TqdmCallback(BaseCallback):
    """SB3-style progress bar on tqdm (SB3's own needs ``rich``)."""

    def _on_training_start(self) -> None:
        from tqdm.auto import tqdm

        self.pbar = tqdm(total=self.locals["total_timesteps"], desc=type(self.model).__name__)

    def _on_step(self) -> bool:
        self.pbar.update(1)
        return True

    def _on_training_end(self) -> None:
        self.pbar.close()


class SB3Facade:
    """What SB3's callbacks, ``evaluate_policy`` and loggers expect of a model with an ``env``.

    Subclasses set ``self.env`` and ``self.num_timesteps`` and call :meth:`_record_episode` and
    :meth:`_record_rollout` from their training loop.
    """

    env: gym.Env
    num_timesteps: int

    def __init__(self, verbose: int = 0) -> None:
        self.verbose = verbose
        self._vec_env: DummyVecEnv | None = None
        self._logger = Logger(None, [HumanOutputFormat(sys.stdout)] if verbose else [])
        self._episode_returns: deque[float] = deque(maxlen=100)
        self._episode_lengths: deque[int] = deque(maxlen=100)

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

    def _init_callback(self, callback: Any, progress_bar: bool) -> BaseCallback:
        if isinstance(callback, list):
            callback = CallbackList(callback)
        if not isinstance(callback, BaseCallback):
            callback = ConvertCallback(callback)
        if progress_bar:
            callback = CallbackList([callback, TqdmCallback()])
        callback.init_callback(self)  # type: ignore[arg-type]
        return callback

    def _record_episode(self, ep_return: float, ep_len: int) -> None:
        self._episode_returns.append(ep_return)
        self._episode_lengths.append(ep_len)

    def _record_rollout(self, start_time: float, start_steps: int, episodes: int, **extra: float) -> None:
        log = self._logger
        log.record("rollout/ep_rew_mean", float(np.mean(self._episode_returns)))
        log.record("rollout/ep_len_mean", float(np.mean(self._episode_lengths)))
        log.record("time/episodes", episodes, exclude="tensorboard")
        elapsed = max(time.time() - start_time, 1e-9)
        log.record("time/fps", int((self.num_timesteps - start_steps) / elapsed))
        log.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        for key, value in extra.items():
            log.record(key, value)
        log.dump(self.num_timesteps)
