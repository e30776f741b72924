"""``ReflexController``: continuous active inference in generalised coordinates (reflex control).

Beliefs ``mu~ = (mu, mu', ..., mu^(d-1))`` over ``dim`` sensed coordinates, embedding order ``d``,
under the linear generative model (Baltieri & Buckley 2019, "PID control as a process of active
inference with linear generative models")::

    y^(k)     = mu^(k) + z^(k)                         sensory precision  pi_z[k]
    mu^(k+1)  = -alpha (mu^(k) - rho^(k)) + w^(k)       prior precision    pi_w[k]
    rho = (goal, 0, ..., 0),  mu^(d) = 0 (truncation)

Free energy ``F = 1/2 sum_k pi_z[k] |y^(k) - mu^(k)|^2 + 1/2 sum_k pi_w[k] |mu^(k+1) + alpha (mu^(k) - rho^(k))|^2``.
One control tick of length ``dt``: the beliefs move along their own motion (``mu^(k) += dt mu^(k+1)``),
relax by ``iters`` gradient steps on ``F`` (perception; anytime: a deadline may stop it early),
then the action descends the precision-weighted sensory prediction error::

    a <- a - dt k_a sum_k G^T pi_z[k] (y^(k) - mu^(k))        (da/dt = -k_a (dy/da)^T Pi_z eps_z)

and is clipped to ``[action_low, action_high]`` and to ``max_rate`` per tick. With the beliefs held
at the goal prior (``perception_lr=0``) the action is a discrete PID with the set-point weight 0 on
P and D: ``K_I = k_a pi_z[0]``, ``K_P = k_a pi_z[1]``, ``K_D = k_a pi_z[2]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DTypeError, InvalidArgumentError, ShapeError


def _per_order(value: Any, name: str, order: int, dim: int, allow_zero: bool = True) -> np.ndarray:
    """A precision given as a scalar, per order ``(order,)`` or per order and coordinate ``(order, dim)``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(name, f"cannot be read as numbers ({exc})") from exc
    if arr.ndim == 0:
        arr = np.full((order, dim), float(arr))
    elif arr.shape == (order,):
        arr = np.repeat(arr[:, None], dim, axis=1)
    elif arr.shape != (order, dim):
        raise InvalidArgumentError(name, f"expected a scalar, shape ({order},) or ({order}, {dim}), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or (not allow_zero and np.any(arr == 0)):
        raise InvalidArgumentError(name, "must be finite and >= 0")
    return arr.copy()


def _vector(value: Any, name: str, size: int, default: float) -> np.ndarray:
    arr = np.full(size, default) if value is None else np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(size, float(arr))
    if arr.shape != (size,):
        raise InvalidArgumentError(name, f"expected shape ({size},), got {arr.shape}")
    return arr.astype(np.float64).copy()


class ReflexController:
    """Reflex (continuous) active-inference controller on numpy vectors; see the module docstring.

    ``reset(obs)`` starts the beliefs at the goal prior's equilibrium ``(goal, 0, ...)``;
    ``step(obs)`` takes the ``sensed_orders`` lowest orders stacked (``(sensed_orders * dim,)``,
    order-major); higher orders come from backward differences of the highest sensed one (the
    system is taken to be at rest at ``reset``). NaN or inf entries are missing readings: zero
    precision, so they move neither beliefs nor action (coasting); a wrong shape raises
    :class:`~pcctrl.models.InvalidArgumentError` and leaves every state as it was.
    """

    def __init__(self, goal: Any, *, order: int = 3, sensed_orders: int = 1, sensory_precision: Any = 1.0,
                 prior_precision: Any = 1.0, alpha: float = 1.0, action_gain: float = 1.0, dt: float = 0.001,
                 iters: int = 1, perception_lr: float | None = None, sensor_gain: Any = None,
                 integral: bool = True, action_low: Any = None, action_high: Any = None,
                 max_rate: Any = None, initial_action: Any = None) -> None:
        goal_arr = np.asarray(goal, dtype=np.float64).reshape(-1)
        dim = goal_arr.size
        if dim < 1 or not np.all(np.isfinite(goal_arr)):
            raise InvalidArgumentError("goal", "must be a non-empty finite vector")
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise InvalidArgumentError("order", f"must be an integer >= 1, got {order!r}")
        if isinstance(sensed_orders, bool) or not isinstance(sensed_orders, int) or not 1 <= sensed_orders <= order:
            raise InvalidArgumentError("sensed_orders", f"must be an integer in [1, order], got {sensed_orders!r}")
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
            raise InvalidArgumentError("iters", f"must be an integer >= 0, got {iters!r}")
        for name, value in (("alpha", alpha), ("action_gain", action_gain), ("dt", dt)):
            if isinstance(value, bool) or not np.isfinite(value) or value < 0 or (name == "dt" and value == 0):
                raise InvalidArgumentError(name, f"must be a finite number >= 0 (dt > 0), got {value!r}")
        gain = np.eye(dim) if sensor_gain is None else np.asarray(sensor_gain, dtype=np.float64)
        if gain.ndim != 2 or gain.shape[0] != dim or not np.all(np.isfinite(gain)):
            raise InvalidArgumentError("sensor_gain", f"expected a finite ({dim}, action_dim) matrix, got {gain.shape}")
        self.dim, self.order, self.sensed_orders = dim, order, sensed_orders
        self.action_dim = gain.shape[1]
        self.dt, self.alpha, self.action_gain = float(dt), float(alpha), float(action_gain)
        self.iters, self.integral = iters, bool(integral)
        self.pi_z = _per_order(sensory_precision, "sensory_precision", order, dim)
        self.pi_w = _per_order(prior_precision, "prior_precision", order, dim)
        self.sensor_gain = gain.copy()
        m = self.action_dim
        self.action_low = _vector(action_low, "action_low", m, -np.inf)
        self.action_high = _vector(action_high, "action_high", m, np.inf)
        if np.any(self.action_low > self.action_high):
            raise InvalidArgumentError("action_low", "must be <= action_high")
        self.max_rate = _vector(max_rate, "max_rate", m, np.inf)
        if np.any(~(self.max_rate > 0)):
            raise InvalidArgumentError("max_rate", "must be > 0 (inf: no rate limit)")
        self.initial_action = np.clip(_vector(initial_action, "initial_action", m, 0.0),
                                      self.action_low, self.action_high)
        self._build(goal_arr, perception_lr)
        self.reset()

    # ---- constants --------------------------------------------------------------------------

    def _build(self, goal: np.ndarray, perception_lr: float | None) -> None:
        """Precompute the linear maps of one tick: few numpy ops per step is what keeps it fast."""
        d, n = self.order, self.dim
        size = d * n
        shift = np.zeros((size, size))
        for k in range(d - 1):
            shift[k * n:(k + 1) * n, (k + 1) * n:(k + 2) * n] = np.eye(n)
        self.motion = np.eye(size) + self.dt * shift             # mu~ <- mu~ + dt D mu~
        e = shift + self.alpha * np.eye(size)                     # eps_w = E mu~ - alpha rho~
        pw = self.pi_w.reshape(-1)
        self.prior_hessian = e.T @ (pw[:, None] * e)
        self._prior_e = e
        self.pi_z_flat = self.pi_z.reshape(-1)
        curvature = float(self.pi_z_flat.max() + np.linalg.eigvalsh(self.prior_hessian)[-1])
        if perception_lr is None:
            perception_lr = 1.0 / curvature if curvature > 0 else 0.0
        if isinstance(perception_lr, bool) or not np.isfinite(perception_lr) or perception_lr < 0:
            raise InvalidArgumentError("perception_lr", f"must be a finite number >= 0, got {perception_lr!r}")
        if perception_lr * curvature >= 2.0:
            raise InvalidArgumentError("perception_lr", f"must be < 2 / {curvature:.4g} (the energy's curvature)")
        self.perception_lr = float(perception_lr)
        weights = self.pi_z.copy()
        if not self.integral:
            weights[0] = 0.0
        g_stack = np.tile(self.sensor_gain, (d, 1))               # dy^(k)/da = G for every order
        self.action_matrix = self.dt * self.action_gain * (g_stack * weights.reshape(-1)[:, None]).T
        self.set_goal(goal)

    def set_goal(self, goal: Any) -> None:
        """Move the goal prior (the beliefs follow through perception, not by a jump)."""
        g = np.asarray(goal, dtype=np.float64).reshape(-1)
        if g.shape != (self.dim,) or not np.all(np.isfinite(g)):
            raise InvalidArgumentError("goal", f"expected a finite vector of shape ({self.dim},), got {g.shape}")
        self.goal = g.copy()
        rho = np.zeros(self.order * self.dim)
        rho[:self.dim] = g
        self.prior_offset = self._prior_e.T @ (self.pi_w.reshape(-1) * (self.alpha * rho))
        self._rho = rho

    # ---- state ------------------------------------------------------------------------------

    @property
    def obs_size(self) -> int:
        """Length of the vector ``step`` takes: ``sensed_orders * dim``."""
        return self.sensed_orders * self.dim

    def reset(self, obs: Any = None) -> None:
        """Beliefs at the goal prior's equilibrium, action at ``initial_action``; ``obs`` primes the differences."""
        self.mu = self._rho.copy()
        self.action = self.initial_action.copy()
        self.prev = np.full(self.order * self.dim, np.nan)
        self.prev[self.obs_size:] = 0.0
        self.last_iters = 0
        if obs is not None:
            y = self._check(obs)
            self.prev[:self.obs_size] = y

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of everything ``step`` changes (beliefs, action, last generalised reading, goal)."""
        return {"mu": self.mu.copy(), "action": self.action.copy(), "prev": self.prev.copy(),
                "goal": self.goal.copy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a :meth:`get_state` snapshot (shapes checked first; nothing changes on error)."""
        want = {"mu": self.mu.shape, "action": self.action.shape, "prev": self.prev.shape, "goal": self.goal.shape}
        arrays = {}
        for key, shape in want.items():
            if key not in state:
                raise InvalidArgumentError("state", f"missing {key!r}")
            arr = np.asarray(state[key], dtype=np.float64)
            if arr.shape != shape:
                raise InvalidArgumentError("state", f"{key!r} has shape {arr.shape}, expected {shape}")
            arrays[key] = arr.copy()
        self.set_goal(arrays["goal"])
        self.mu, self.action, self.prev = arrays["mu"], arrays["action"], arrays["prev"]

    def to_checkpoint(self) -> dict[str, Any]:
        """Settings and state as checkpoint data (see :mod:`pcctrl.runtime.checkpoint`)."""
        return {
            "settings": {"goal": self.goal.copy(), "order": self.order, "sensed_orders": self.sensed_orders,
                         "sensory_precision": self.pi_z.copy(), "prior_precision": self.pi_w.copy(),
                         "alpha": self.alpha, "action_gain": self.action_gain, "dt": self.dt, "iters": self.iters,
                         "perception_lr": self.perception_lr, "sensor_gain": self.sensor_gain.copy(),
                         "integral": self.integral, "action_low": self.action_low.copy(),
                         "action_high": self.action_high.copy(), "max_rate": self.max_rate.copy(),
                         "initial_action": self.initial_action.copy()},
            "state": self.get_state(), "last_iters": self.last_iters,
        }

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> "ReflexController":
        """Rebuild a :meth:`to_checkpoint` controller (the constructor validates every setting)."""
        controller = cls(**data["settings"])
        controller.set_state(data["state"])
        controller.last_iters = int(data["last_iters"])
        return controller

    # ---- step -------------------------------------------------------------------------------

    def _check(self, obs: Any) -> np.ndarray:
        if np.iscomplexobj(obs):
            raise DTypeError("obs", "is complex; readings must be real numbers")
        try:
            y = np.array(obs, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError("obs", f"cannot be read as numbers ({exc})") from exc
        if y.shape != (self.obs_size,):
            raise ShapeError("obs", f"expected shape ({self.obs_size},), got {y.shape}")
        if not np.isfinite(y.sum()):
            y[~np.isfinite(y)] = np.nan
        return y

    def generalised(self, y: np.ndarray) -> np.ndarray:
        """Generalised reading: sensed orders, then backward differences (NaN where a term is missing)."""
        s, n = self.obs_size, self.dim
        if s == self.prev.size:
            return y
        full = np.empty_like(self.prev)
        full[:s] = y
        for k in range(s, full.size, n):  # each order differences the new value of the one below
            full[k:k + n] = (full[k - n:k] - self.prev[k - n:k]) / self.dt
        return full

    def step(self, obs: Any, deadline: Callable[[], bool] | None = None) -> np.ndarray:
        """One tick: perceive (at most ``iters`` steps, fewer once ``deadline()`` is true), act; the action."""
        y = self.generalised(self._check(obs))
        missing = np.isnan(y)
        err_mask = ~missing
        y0 = np.where(missing, 0.0, y)
        mu = self.motion @ self.mu
        precision = self.pi_z_flat * err_mask
        lr = self.perception_lr
        done = 0
        if lr > 0:
            for done in range(1, self.iters + 1):
                grad = self.prior_hessian @ mu - self.prior_offset - precision * (y0 - mu)
                mu -= lr * grad
                if deadline is not None and done < self.iters and deadline():
                    break
        eps = (y0 - mu) * err_mask
        a = self.action - self.action_matrix @ eps
        a = np.minimum(np.maximum(a, self.action - self.max_rate), self.action + self.max_rate)
        a = np.minimum(np.maximum(a, self.action_low), self.action_high)
        self.mu, self.action, self.prev, self.last_iters = mu, a, y, done
        return a.copy()

    def free_energy(self, obs_generalised: np.ndarray, mu: np.ndarray | None = None) -> float:
        """``F`` of the beliefs ``mu`` (default: current) for a full generalised reading (NaN: missing)."""
        mu = self.mu if mu is None else mu
        y = np.asarray(obs_generalised, dtype=np.float64)
        ok = ~np.isnan(y)
        ez = np.where(ok, y - mu, 0.0)
        ew = self._prior_e @ mu - self.alpha * self._rho
        return float(0.5 * np.sum(self.pi_z_flat * ez * ez) + 0.5 * np.sum(self.pi_w.reshape(-1) * ew * ew))
