"""Gaussian noise processes and the seeding rule shared by the random wrappers.

A noise process produces one sample per environment step, either white
(independent draws) or an Ornstein-Uhlenbeck (OU) process sampled exactly on the
step grid::

    n_0 ~ N(0, std^2),   n_{t+1} = rho * n_t + std * sqrt(1 - rho^2) * xi_t,   rho = exp(-dt / tau)

so every sample has variance ``std**2`` and the lag-k autocorrelation is ``rho**k``.
"""

from __future__ import annotations

import zlib
from typing import Any

import gymnasium as gym
import numpy as np

from pcctrl.errors import InvalidArgumentError


def check_std(std: Any, shape: tuple[int, ...], name: str = "std") -> np.ndarray:
    """Return ``std`` broadcast to ``shape`` as float64, or raise InvalidArgumentError naming ``name``."""
    try:
        arr = np.broadcast_to(np.asarray(std, dtype=np.float64), shape).copy()
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(name, f"must be a number or an array broadcastable to {shape}, got {std!r}") from exc
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidArgumentError(name, f"must be finite and >= 0, got {std!r}")
    return arr


def correlation_from_tau(tau: float | None, dt: float) -> float:
    """Return the OU one-step correlation ``exp(-dt / tau)``; raise InvalidArgumentError naming ``tau`` if invalid."""
    if tau is None or isinstance(tau, bool) or not np.isfinite(tau) or tau <= 0:
        raise InvalidArgumentError("tau", f"must be a finite number > 0 for kind='ou', got {tau!r}")
    return float(np.exp(-dt / float(tau)))


def env_dt(env: gym.Env, dt: float | None) -> float:
    """Return ``dt`` if given, else ``env.unwrapped.dt`` if the env defines it, else 1.0 (tau in steps)."""
    if dt is None:
        dt = getattr(env.unwrapped, "dt", None)
        if not isinstance(dt, (int, float)) or isinstance(dt, bool) or dt <= 0:
            dt = 1.0
    elif isinstance(dt, bool) or not np.isfinite(dt) or dt <= 0:
        raise InvalidArgumentError("dt", f"must be a finite number > 0, got {dt!r}")
    return float(dt)


class GaussianProcessNoise:
    """White (``rho = 0``) or OU (``0 < rho < 1``) Gaussian noise with per-entry ``std``."""

    def __init__(self, std: np.ndarray, rho: float = 0.0) -> None:
        """Create the process; ``std`` is an array of per-entry standard deviations."""
        if not 0.0 <= rho < 1.0:
            raise InvalidArgumentError("rho", f"must be in [0, 1), got {rho!r}")
        self.std = np.asarray(std, dtype=np.float64)
        self.rho = float(rho)
        self._innovation_std = self.std * np.sqrt(1.0 - self.rho**2)
        self._state: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the current state; the next sample is drawn from the stationary law."""
        self._state = None

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Return the next noise sample (a fresh array)."""
        if self._state is None or self.rho == 0.0:
            self._state = self.std * rng.standard_normal(self.std.shape)
        else:
            self._state = self.rho * self._state + self._innovation_std * rng.standard_normal(self.std.shape)
        return self._state.copy()


def wrapper_depth(env: gym.Env) -> int:
    """Number of wrappers between ``env`` and its unwrapped environment."""
    depth = 0
    while isinstance(env, gym.Wrapper):
        depth += 1
        env = env.env
    return depth


def stream_rng(reset_seed: int | None, wrapper: gym.Wrapper, seed: int | None) -> np.random.Generator:
    """The generator a random wrapper uses.

    With ``reset_seed`` (the seed given to ``reset``) the stream is keyed by
    ``(reset_seed, wrapper class, position in the wrapper stack, seed)``, so a seeded
    reset reproduces the trajectory, and two wrappers in one stack draw independent
    noise. Without it, the stream comes from ``seed`` alone (OS entropy if None).
    The inner environment's ``np_random`` is never drawn from.
    """
    if reset_seed is None:
        return np.random.default_rng(seed)
    key = [int(reset_seed), zlib.crc32(type(wrapper).__name__.encode()), wrapper_depth(wrapper.env)]
    if seed is not None:
        key.append(int(seed))
    return np.random.default_rng(np.random.SeedSequence(key))
