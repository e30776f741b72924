"""ReflexController: PID equivalence (Baltieri & Buckley 2019), perception's fixed point, input policy, limits."""

from __future__ import annotations

import numpy as np
import pytest

from pcctrl.control.reflex import ReflexController
from pcctrl.models import InvalidArgumentError

DT = 0.01


def plant_step(x: np.ndarray, v: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Damped unit masses (two independent axes), semi-implicit Euler."""
    v = v + DT * (u - 0.5 * v)
    return x + DT * v, v


class PID:
    """Textbook positional PID, set-point weight 0 on P and D, bumpless start at u0 = 0."""

    def __init__(self, kp, ki, kd, setpoint, y0):
        self.kp, self.ki, self.kd, self.r = kp, ki, kd, setpoint
        self.y0, self.prev, self.integral = y0.copy(), y0.copy(), np.zeros_like(y0)

    def __call__(self, y):
        self.integral += (y - self.r) * DT
        dy = (y - self.prev) / DT
        self.prev = y.copy()
        return -self.ki * self.integral - self.kp * (y - self.y0) - self.kd * dy


def test_action_equals_pid_with_precisions_as_gains():
    goal = np.array([1.0, -0.5])
    pi = np.array([[4.0, 2.0], [6.0, 3.0], [1.5, 0.8]])  # orders 0, 1, 2 -> I, P, D
    k_a = 0.7
    reflex = ReflexController(goal, order=3, sensed_orders=1, sensory_precision=pi, action_gain=k_a, dt=DT,
                              perception_lr=0.0)
    x1 = x2 = np.array([0.2, 0.1])
    v1 = v2 = np.zeros(2)
    reflex.reset(x1)
    pid = PID(k_a * pi[1], k_a * pi[0], k_a * pi[2], goal, x2)
    for _ in range(3000):
        u1, u2 = reflex.step(x1), pid(x2)
        np.testing.assert_allclose(u1, u2, rtol=1e-9, atol=1e-9)
        x1, v1 = plant_step(x1, v1, u1)
        x2, v2 = plant_step(x2, v2, u2)
    assert np.abs(x1 - goal).max() < 0.02  # and it controls: the integral term removes the offset


def test_gains_are_per_order_precisions():
    """Doubling one order's precision doubles exactly that PID term's contribution."""
    goal = np.zeros(1)
    base = ReflexController(goal, order=3, sensory_precision=[1.0, 1.0, 1.0], dt=DT, perception_lr=0.0)
    more_p = ReflexController(goal, order=3, sensory_precision=[1.0, 2.0, 1.0], dt=DT, perception_lr=0.0)
    for c in (base, more_p):
        c.reset([0.0])
    a, b = base.step([0.1]), more_p.step([0.1])
    # y=0.1: I term dt*0.1, P term dt*(0.1/dt) = 0.1, D term dt*(10/dt) = 10 (at rest at reset)
    np.testing.assert_allclose(a, -(DT * 0.1 + 0.1 + 10.0))
    np.testing.assert_allclose(b - a, [-0.1])


def test_perception_relaxes_to_the_free_energy_minimum():
    rng = np.random.default_rng(0)
    c = ReflexController([0.3, -0.2], order=3, sensed_orders=3, sensory_precision=[[2, 1], [1, 3], [0.5, 0.5]],
                         prior_precision=[[1, 2], [0.5, 1], [2, 2]], alpha=1.5, dt=DT, iters=3000)
    c.reset()
    y = rng.normal(size=6)
    c.step(y)
    # Independent reference: F is quadratic; solve its normal equations directly.
    n, d = 2, 3
    e = np.zeros((6, 6))
    for k in range(d):
        e[k * n:(k + 1) * n, k * n:(k + 1) * n] = 1.5 * np.eye(n)
        if k < d - 1:
            e[k * n:(k + 1) * n, (k + 1) * n:(k + 2) * n] = np.eye(n)
    rho = np.array([0.3, -0.2, 0, 0, 0, 0])
    pz = np.array([2, 1, 1, 3, 0.5, 0.5])
    pw = np.array([1, 2, 0.5, 1, 2, 2.0])
    hess = np.diag(pz) + e.T @ np.diag(pw) @ e
    rhs = pz * y + e.T @ (pw * 1.5 * rho)
    np.testing.assert_allclose(c.mu, np.linalg.solve(hess, rhs), atol=1e-8)
    assert c.free_energy(y) <= c.free_energy(y, np.linalg.solve(hess, rhs) + 1e-3)


def test_missing_readings_coast_and_bad_shapes_change_nothing():
    c = ReflexController([0.5, 0.5], order=2, sensed_orders=2, sensory_precision=[[1, 1], [0.5, 0.5]], dt=DT,
                         iters=4)
    ref = ReflexController([0.5, 0.5], order=2, sensed_orders=2, sensory_precision=[[1, 1], [0.5, 0.5]], dt=DT,
                           iters=4, perception_lr=c.perception_lr)
    for x in (c, ref):
        x.reset([0.0, 0.0, 0.0, 0.0])
        x.step([0.1, 0.2, 0.0, 0.0])
    before = c.get_state()
    with pytest.raises(InvalidArgumentError) as info:
        c.step([0.1, 0.2, 0.3])
    assert info.value.argument == "obs"
    for key, value in c.get_state().items():
        np.testing.assert_array_equal(value, before[key])
    # All readings missing: the action holds; the beliefs follow the prior only (as with zero precision).
    a = c.step([np.nan, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(a, before["action"])
    ref.pi_z_flat = np.zeros_like(ref.pi_z_flat)
    ref.step([0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(c.mu, ref.mu, atol=1e-15)
    assert np.all(np.isfinite(c.mu))
    # A partly missing reading uses the rest: entry 0 missing, entry 1 still moves the action.
    c2 = ReflexController([0.0, 0.0], order=1, sensory_precision=1.0, dt=DT, perception_lr=0.0)
    c2.reset()
    np.testing.assert_allclose(c2.step([np.nan, 1.0]), [0.0, -DT])


def test_clipping_and_rate_limit():
    c = ReflexController([1.0], order=3, sensory_precision=[50.0, 50.0, 5.0], dt=DT, perception_lr=0.0,
                         action_low=-0.4, action_high=0.3, max_rate=0.05)
    c.reset([0.0])
    prev = c.action.copy()
    rng = np.random.default_rng(1)
    for _ in range(200):
        a = c.step(rng.normal(size=1) * 3)
        assert -0.4 <= a[0] <= 0.3 and abs(a[0] - prev[0]) <= 0.05 + 1e-12
        prev = a


def test_deadline_stops_relaxation_and_returns_the_partial_result():
    kwargs = dict(order=2, sensed_orders=2, sensory_precision=1.0, prior_precision=2.0, dt=DT)
    anytime = ReflexController([0.2, 0.1], iters=50, **kwargs)
    capped = ReflexController([0.2, 0.1], iters=7, **kwargs, perception_lr=anytime.perception_lr)
    checks = []

    def deadline():  # fake clock: expires on the 7th check
        checks.append(1)
        return len(checks) >= 7

    for c in (anytime, capped):
        c.reset()
    a = anytime.step([0.3, 0.1, 0.0, 0.2], deadline)
    b = capped.step([0.3, 0.1, 0.0, 0.2])
    assert anytime.last_iters == 7 and capped.last_iters == 7
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(anytime.mu, capped.mu)


@pytest.mark.parametrize("kwargs,argument", [
    (dict(order=0), "order"), (dict(sensed_orders=4), "sensed_orders"), (dict(sensory_precision=-1.0), "sensory_precision"),
    (dict(perception_lr=10.0), "perception_lr"), (dict(dt=0.0), "dt"), (dict(max_rate=0.0), "max_rate"),
])
def test_bad_arguments(kwargs, argument):
    with pytest.raises(InvalidArgumentError) as info:
        ReflexController([0.0, 0.0], **kwargs)
    assert info.value.argument == argument
