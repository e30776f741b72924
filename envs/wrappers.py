"""Sensor and actuator wrappers: noise, masking, dropout and delays.

Every wrapper works on any environment with a :class:`~gymnasium.spaces.Box`
observation (``ObservationDelay`` on any observation space; the action wrappers need a
Box action space) and they compose, e.g.::

    env = ObservationDelay(SensorDropout(ObservationNoise(env, std=0.05, kind="ou", tau=0.2), p=0.1), delay=2)

Randomness: each random wrapper owns a generator ``self.rng`` (see
:func:`pcctrl.envs.noise.stream_rng`). ``reset(seed=s)`` reseeds it from
``(s, wrapper class, position in the stack, seed argument)``, so the same reset seed
gives the same trajectory through the whole stack; the inner env's ``np_random`` is
never drawn from, so wrapping does not change the env's own noise. Before the first
seeded reset the generator comes from the ``seed`` argument (OS entropy if None).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pcctrl.errors import InvalidArgumentError, ShapeError

from .actions import checked_action
from .noise import GaussianProcessNoise, check_std, correlation_from_tau, env_dt, stream_rng
from .spaces import NaNBox

__all__ = [
    "ObservationNoise",
    "MaskObservation",
    "SensorDropout",
    "ObservationDelay",
    "ActionDelay",
    "ActionNoise",
]

NoiseKind = Literal["white", "ou"]


def _float_box(space: spaces.Space, what: str) -> spaces.Box:
    """Return ``space`` if it is a floating-point Box, else raise TypeError naming ``what``."""
    if not isinstance(space, spaces.Box):
        raise TypeError(f"{what} must be a gymnasium.spaces.Box, got {type(space).__name__}")
    if not np.issubdtype(space.dtype, np.floating):
        raise TypeError(f"{what} must have a floating dtype, got {space.dtype}")
    return space


def _check_delay(delay: Any) -> int:
    """Return ``delay`` as an int >= 0, or raise InvalidArgumentError naming it."""
    if isinstance(delay, bool) or not isinstance(delay, (int, np.integer)) or delay < 0:
        raise InvalidArgumentError("delay", f"must be an integer >= 0, got {delay!r}")
    return int(delay)


def _check_seed(seed: Any) -> int | None:
    """Return ``seed`` if None or an int >= 0, else raise InvalidArgumentError naming it."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InvalidArgumentError("seed", f"must be None or an integer >= 0, got {seed!r}")
    return None if seed is None else int(seed)


def _noise_process(env: gym.Env, std: Any, shape: tuple[int, ...], kind: str, tau: float | None,
                   dt: float | None) -> GaussianProcessNoise:
    """Validate noise arguments and build the process."""
    std_arr = check_std(std, shape, "std")
    if kind == "white":
        return GaussianProcessNoise(std_arr, 0.0)
    if kind == "ou":
        return GaussianProcessNoise(std_arr, correlation_from_tau(tau, env_dt(env, dt)))
    raise InvalidArgumentError("kind", f"must be 'white' or 'ou', got {kind!r}")


class ObservationNoise(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Add Gaussian sensor noise to every observation: white or Ornstein-Uhlenbeck (coloured).

    Args:
        env: an env with a floating Box observation space.
        std: noise standard deviation, a number or an array broadcastable to the observation shape.
        kind: ``"white"`` (independent each step) or ``"ou"`` (stationary OU, variance ``std**2``,
            lag-1 autocorrelation ``rho = exp(-dt / tau)``, exposed as ``self.rho``).
        tau: OU correlation time (required for ``"ou"``), in the units of ``dt``.
        dt: step duration; default ``env.unwrapped.dt`` if defined, else 1 (``tau`` in steps).
        seed: optional key for the wrapper's own generator (see module docstring).

    The observation space becomes ``Box(-inf, inf)`` with the same shape and dtype.
    """

    def __init__(self, env: gym.Env, std: Any, kind: NoiseKind = "white", tau: float | None = None,
                 dt: float | None = None, seed: int | None = None) -> None:
        """Validate the arguments and widen the observation space."""
        box = _float_box(env.observation_space, "env.observation_space")
        gym.utils.RecordConstructorArgs.__init__(self, std=std, kind=kind, tau=tau, dt=dt, seed=seed)
        super().__init__(env)
        self._seed = _check_seed(seed)
        self.process = _noise_process(env, std, box.shape, kind, tau, dt)
        self.kind = kind
        self.rho = self.process.rho
        self.rng = stream_rng(None, self, self._seed)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=box.shape, dtype=box.dtype)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the env and restart the noise process (reseeded when ``seed`` is given)."""
        if seed is not None:
            self.rng = stream_rng(seed, self, self._seed)
        self.process.reset()
        return super().reset(seed=seed, options=options)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Return ``observation + noise`` in the observation dtype."""
        noisy = np.asarray(observation, dtype=np.float64) + self.process.sample(self.rng)
        return noisy.astype(self.observation_space.dtype)


class MaskObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Hide chosen entries of a 1-D Box observation (they are removed from the vector).

    Args:
        env: an env with a 1-D Box observation space.
        hide: indices to hide (negative indices count from the end); unique, and at least
            one entry must stay visible. ``self.visible_indices`` lists the kept ones.
    """

    def __init__(self, env: gym.Env, hide: Sequence[int]) -> None:
        """Validate ``hide`` and shrink the observation space."""
        box = env.observation_space
        if not isinstance(box, spaces.Box):
            raise TypeError(f"env.observation_space must be a gymnasium.spaces.Box, got {type(box).__name__}")
        if len(box.shape) != 1:
            raise ShapeError("env.observation_space", f"must be 1-D for MaskObservation, got shape {box.shape}")
        gym.utils.RecordConstructorArgs.__init__(self, hide=hide)
        super().__init__(env)
        n = box.shape[0]
        if isinstance(hide, (int, np.integer)) or not isinstance(hide, Sequence | np.ndarray):
            raise TypeError(f"hide must be a sequence of integer indices, got {hide!r}")
        normalised = []
        for i in hide:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -n <= i < n:
                raise InvalidArgumentError("hide", f"contains {i!r}, not an integer index in [-{n}, {n})")
            normalised.append(int(i) % n)
        if len(set(normalised)) != len(normalised):
            raise InvalidArgumentError("hide", f"contains duplicate indices: {list(hide)!r}")
        if not normalised or len(normalised) == n:
            raise InvalidArgumentError("hide", f"must hide at least one and fewer than all {n} entries, "
                                               f"got {list(hide)!r}")
        self.hidden_indices = np.array(sorted(normalised), dtype=np.intp)
        self.visible_indices = np.array([i for i in range(n) if i not in set(normalised)], dtype=np.intp)
        self.observation_space = spaces.Box(box.low[self.visible_indices], box.high[self.visible_indices],
                                            dtype=box.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Return only the visible entries."""
        return np.asarray(observation)[self.visible_indices].copy()


class SensorDropout(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Drop each observation entry independently with probability ``p`` at every step.

    Args:
        env: an env with a floating Box observation space.
        p: drop probability in [0, 1].
        mode: ``"nan"``: a dropped entry reads NaN and the observation space becomes a
            :class:`~pcctrl.envs.spaces.NaNBox` (same bounds, NaN allowed); ``"hold"``: a
            dropped entry repeats the last value delivered for it (space unchanged).
        indices: which entries may drop (default: all).
        seed: optional key for the wrapper's own generator (see module docstring).

    The reset observation is always delivered whole. ``info["dropped"]`` is the boolean
    mask of dropped entries. NaN observations fail Stable-Baselines3's NaN check by
    design: put a filter (or ``mode="hold"``) between this wrapper and an SB3 learner.
    """

    def __init__(self, env: gym.Env, p: float, mode: Literal["nan", "hold"] = "nan",
                 indices: Sequence[int] | None = None, seed: int | None = None) -> None:
        """Validate the arguments and set the observation space."""
        box = _float_box(env.observation_space, "env.observation_space")
        gym.utils.RecordConstructorArgs.__init__(self, p=p, mode=mode, indices=indices, seed=seed)
        super().__init__(env)
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) or not 0.0 <= p <= 1.0:
            raise InvalidArgumentError("p", f"must be a probability in [0, 1], got {p!r}")
        if mode not in ("nan", "hold"):
            raise InvalidArgumentError("mode", f"must be 'nan' or 'hold', got {mode!r}")
        self.p = float(p)
        self.mode = mode
        self._seed = _check_seed(seed)
        self.rng = stream_rng(None, self, self._seed)
        self._eligible = np.ones(box.shape, dtype=bool)
        if indices is not None:
            flat = np.zeros(int(np.prod(box.shape)), dtype=bool)
            n = flat.size
            for i in indices:
                if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -n <= i < n:
                    raise InvalidArgumentError("indices", f"contains {i!r}, not an integer index in [-{n}, {n})")
                flat[int(i) % n] = True
            self._eligible = flat.reshape(box.shape)
        self._last: np.ndarray | None = None
        if mode == "nan":
            self.observation_space = NaNBox(box.low, box.high, dtype=box.dtype)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the env; the first observation is delivered whole."""
        if seed is not None:
            self.rng = stream_rng(seed, self, self._seed)
        obs, info = self.env.reset(seed=seed, options=options)
        self._last = np.array(obs, copy=True)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env and drop entries of the new observation."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        dropped = (self.rng.random(self._eligible.shape) < self.p) & self._eligible
        out = np.array(obs, copy=True)
        if self.mode == "nan":
            out[dropped] = np.nan
        else:
            out[dropped] = self._last[dropped]
        self._last = out.copy()
        info = dict(info)
        info["dropped"] = dropped
        return out, reward, terminated, truncated, info


class ObservationDelay(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Deliver the observation from ``delay`` steps ago (``delay=0`` is the identity).

    At reset the buffer is filled with the reset observation, so the first ``delay``
    step observations repeat it. ``info`` is not delayed (``info["state"]`` stays the
    current true state). Works with any observation space.
    """

    def __init__(self, env: gym.Env, delay: int) -> None:
        """Validate ``delay`` (an int >= 0)."""
        gym.utils.RecordConstructorArgs.__init__(self, delay=delay)
        super().__init__(env)
        self.delay = _check_delay(delay)
        self._buffer: deque[Any] = deque(maxlen=self.delay + 1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the env and fill the buffer with the reset observation."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._buffer.clear()
        for _ in range(self.delay + 1):
            self._buffer.append(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env and return the observation from ``delay`` steps ago."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._buffer.append(obs)
        return self._buffer[0], reward, terminated, truncated, info


class ActionDelay(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Apply the action chosen ``delay`` steps ago (``delay=0`` is the identity).

    For the first ``delay`` steps after a reset, ``initial_action`` is applied (default:
    zero clipped into the Box action space). ``info["applied_action"]`` is the action the
    env actually received.
    """

    def __init__(self, env: gym.Env, delay: int, initial_action: Any = None) -> None:
        """Validate ``delay`` and ``initial_action``."""
        gym.utils.RecordConstructorArgs.__init__(self, delay=delay, initial_action=initial_action)
        super().__init__(env)
        self.delay = _check_delay(delay)
        space = env.action_space
        if initial_action is None:
            if not isinstance(space, spaces.Box):
                raise TypeError(f"initial_action is required when env.action_space is not a Box "
                                f"(got {type(space).__name__})")
            initial_action = np.clip(np.zeros(space.shape), space.low, space.high).astype(space.dtype)
        elif isinstance(space, spaces.Box):
            initial_action = np.asarray(initial_action, dtype=space.dtype)
        if not space.contains(initial_action):
            raise InvalidArgumentError("initial_action", f"{initial_action!r} is not in env.action_space {space}")
        self.initial_action = initial_action
        self._queue: deque[Any] = deque(maxlen=self.delay + 1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the env and fill the queue with ``initial_action``."""
        self._queue.clear()
        for _ in range(self.delay):
            self._queue.append(self.initial_action)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Queue ``action`` and apply the one chosen ``delay`` steps ago (a bad action is refused before queueing)."""
        if isinstance(self.env.action_space, spaces.Box):
            checked_action(action, self.env.action_space)
        self._queue.append(np.copy(action))
        applied = self._queue.popleft()
        obs, reward, terminated, truncated, info = self.env.step(applied)
        info = dict(info)
        info["applied_action"] = applied
        return obs, reward, terminated, truncated, info


class ActionNoise(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Add Gaussian actuator noise (white or OU) to every action.

    Args:
        env: an env with a floating Box action space.
        std, kind, tau, dt, seed: as for :class:`ObservationNoise`, per action entry.
        clip: clip the noisy action into the action space (default True).

    ``info["applied_action"]`` is the action the env actually received.
    """

    def __init__(self, env: gym.Env, std: Any, kind: NoiseKind = "white", *, tau: float | None = None,
                 dt: float | None = None, clip: bool = True, seed: int | None = None) -> None:
        """Validate the arguments."""
        box = _float_box(env.action_space, "env.action_space")
        gym.utils.RecordConstructorArgs.__init__(self, std=std, kind=kind, tau=tau, dt=dt, clip=clip, seed=seed)
        super().__init__(env)
        self._seed = _check_seed(seed)
        self.process = _noise_process(env, std, box.shape, kind, tau, dt)
        self.kind = kind
        self.rho = self.process.rho
        self.clip = bool(clip)
        self.rng = stream_rng(None, self, self._seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the env and restart the noise process (reseeded when ``seed`` is given)."""
        if seed is not None:
            self.rng = stream_rng(seed, self, self._seed)
        self.process.reset()
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Perturb ``action``, clip it if asked, and step the env with it (a bad action is refused before any noise)."""
        box = self.env.action_space
        noisy = checked_action(action, box) + self.process.sample(self.rng)
        if self.clip:
            noisy = np.clip(noisy, box.low, box.high)
        applied = noisy.astype(box.dtype)
        obs, reward, terminated, truncated, info = self.env.step(applied)
        info = dict(info)
        info["applied_action"] = applied
        return obs, reward, terminated, truncated, info
