"""The PC filter's Laplace step for one filter on CPU, in float64 numpy on tiny matrices.

For a 2-D state a torch op costs ~5-10 µs of dispatch against a few nanoseconds of arithmetic,
so a Gauss-Newton iteration of ~25 torch ops costs more than the whole update may. This is the
same algorithm as :meth:`PCFilter._relax_gauss_newton` (the Woodbury form of the step, the
backtracking line search with the same acceptance test, the same stopping rule and the same
divergence guard) on the model's :class:`~pcctrl.models.state_space.NumpyKernel`; the tests
check that both paths give the same beliefs.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DivergenceError, NotPositiveDefiniteError
from ..models.state_space import NumpyKernel

_ACCEPT = 1 + 1e-12  # a step is accepted when it does not raise 2E by more than this factor (as on torch)


def _inverse_spd(matrix: np.ndarray, argument: str, message: str) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix; closed form up to 2 x 2 (a numpy
    linalg call costs ~3 µs), else through its Cholesky factor. Not positive definite ->
    :class:`NotPositiveDefiniteError`."""
    size = matrix.shape[0]
    if size <= 2:
        if size == 1:
            a = matrix.item()
            if not a > 0:
                raise NotPositiveDefiniteError(argument, message)
            return np.array([[1.0 / a]])
        a, b, c, d = matrix.ravel().tolist()
        det = a * d - b * c
        if not (a > 0 and det > 0):
            raise NotPositiveDefiniteError(argument, message)
        return np.array([[d / det, -b / det], [-c / det, a / det]])
    try:
        chol_inv = np.linalg.inv(np.linalg.cholesky(matrix))
    except np.linalg.LinAlgError as exc:
        raise NotPositiveDefiniteError(argument, message) from exc
    return chol_inv.T @ chol_inv


_PRIOR = "the predicted covariance is not positive definite"
_INNOVATION = "the innovation covariance G P G^T + R is not positive definite (ill-conditioned belief)"


def divergence_message(start: float, now: float, factor: float) -> str:
    """The :class:`DivergenceError` text shared by both paths."""
    return (f"the Gauss-Newton energy grew from 2E = {start:.4g} to {now:.4g}, past divergence_factor = "
            f"{factor:g} times (2E at the prior mean + the number of observed readings); the belief is "
            "unchanged (enable the line search, max_halvings > 0, or check the model and readings)")


class SmallGaussNewton:
    """Predict and correct one belief (float64 arrays ``(n,)``, ``(n, n)``) with a numpy kernel.

    The step is the Woodbury form ``s' = mu + P G^T S^-1 (r + G (s - mu))``, ``S = G P G^T + R``,
    and the covariance ``P - P G^T S^-1 G P``, as on the torch path (which applies ``S^-1``
    through a Cholesky factor: the same numbers up to rounding).
    """

    def __init__(self, kernel: NumpyKernel, Q: np.ndarray, R: np.ndarray, linear: bool, iters: int,
                 tol: float | None, max_halvings: int, divergence_factor: float | None) -> None:
        self.kernel, self.Q, self.R = kernel, Q, R
        self.R_inv = _inverse_spd(R, "obs_cov", "is not positive definite")
        self.linear = linear
        self.iters = 1 if linear else iters
        self.tol = None if linear else tol
        self.search = not linear and max_halvings > 0
        self.max_halvings = max_halvings
        # With the line search the energy never rises; the closed form (linear) lands on the minimum.
        self.guard = None if linear or self.search else divergence_factor
        self.track = self.search or self.guard is not None

    def predict(self, mean: np.ndarray, cov: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(f(m, a), F P F^T + Q)``."""
        mu, jac = self.kernel.transition(mean, action)
        prior = jac @ cov @ jac.T + self.Q
        return mu, 0.5 * (prior + prior.T)

    def _linearize(self, s: np.ndarray, obs: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        y, jac = self.kernel.observation(s)
        if w is None:
            return obs - y, jac
        return (obs - y) * w, jac * w[:, None]

    def correct(self, mu: np.ndarray, prior: np.ndarray, obs: np.ndarray,
                observed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Relax ``E(s) = 1/2 |o - g(s)|^2_R^-1 + 1/2 |s - mu|^2_P^-1`` from ``mu``; ``(mean, cov)``."""
        if observed is None:
            w, noise, noise_inv = None, self.R, self.R_inv
        else:
            # Missing rows/columns of R become the identity; with r and G zeroed there, zero precision.
            w = observed.astype(np.float64)
            noise = w[:, None] * self.R * w[None, :] + np.diag(1.0 - w)
            noise_inv = _inverse_spd(noise, "obs", _INNOVATION)
        p, n = obs.shape[0], mu.shape[0]
        if self.track:
            # 2E = [r; d]^T blockdiag(noise^-1, prior^-1) [r; d]: two matmuls per evaluation.
            weight = np.zeros((p + n, p + n))
            weight[:p, :p] = noise_inv
            weight[p:, p:] = _inverse_spd(prior, "cov", _PRIOR)
        else:
            _check_spd(prior)
        s, d = mu, np.zeros(n)
        r, jac = self._linearize(s, obs, w)
        if self.track:
            energy = start = float(r @ noise_inv @ r)
            bound = None if self.guard is None else self.guard * (start + (len(obs) if w is None else float(w.sum())))
        gain = None
        for _ in range(self.iters):
            cross = prior @ jac.T
            gain = cross @ _inverse_spd(jac @ cross + noise, "obs", _INNOVATION)
            candidate = mu + gain @ (r + jac @ d)
            step = candidate - s
            r, jac = self._linearize(candidate, obs, w)
            d = candidate - mu
            if self.track:
                new_energy = _quadratic(weight, r, d)
                if self.search and not new_energy <= energy * _ACCEPT:
                    step = self._backtrack(s, step, mu, energy, obs, w, weight)
                    candidate = s + step
                    r, jac = self._linearize(candidate, obs, w)
                    d = candidate - mu
                    new_energy = _quadratic(weight, r, d)
                elif bound is not None and new_energy > bound:
                    raise DivergenceError(divergence_message(start, new_energy, self.guard))
                energy = new_energy
            s = candidate
            if self.tol is not None and not (max(map(abs, step.tolist())) - self.tol * max(map(abs, s.tolist()))
                                             > self.tol):
                break
        if not self.linear or gain is None:
            cross = prior @ jac.T
            gain = cross @ _inverse_spd(jac @ cross + noise, "obs", _INNOVATION)
        cov = prior - gain @ cross.T
        return s, 0.5 * (cov + cov.T)

    def _backtrack(self, s: np.ndarray, step: np.ndarray, mu: np.ndarray, energy: float, obs: np.ndarray,
                   w: np.ndarray | None, weight: np.ndarray) -> np.ndarray:
        """Halve the step until it does not raise ``2E`` (at most ``max_halvings`` times), else no step."""
        alpha = 0.5
        for halving in range(1, self.max_halvings + 1):
            candidate = s + alpha * step
            r = obs - self.kernel.observe(candidate)
            if w is not None:
                r = r * w
            if _quadratic(weight, r, candidate - mu) <= energy * _ACCEPT:
                return alpha * step
            if halving < self.max_halvings:
                alpha *= 0.5
        return np.zeros_like(step)


def _quadratic(weight: np.ndarray, r: np.ndarray, d: np.ndarray) -> float:
    """``2E = e^T W e`` with ``e = [r; d]``."""
    e = np.concatenate((r, d))
    return float(e @ weight @ e)


def _check_spd(prior: np.ndarray) -> None:
    """Positive definiteness of the predicted covariance (Sylvester's criterion up to 2 x 2)."""
    size = prior.shape[0]
    if size <= 2:
        ok = prior[0, 0] > 0 and (size == 1 or prior[0, 0] * prior[1, 1] - prior[0, 1] * prior[1, 0] > 0)
        if not ok:
            raise NotPositiveDefiniteError("cov", _PRIOR)
        return
    try:
        np.linalg.cholesky(prior)
    except np.linalg.LinAlgError as exc:
        raise NotPositiveDefiniteError("cov", _PRIOR) from exc


def is_finite(*arrays: np.ndarray) -> bool:
    """Whether every entry is finite (one sum first: a finite sum means finite entries)."""
    total = sum(sum(a.ravel().tolist()) for a in arrays)  # lists: cheaper than numpy calls at this size
    return math.isfinite(total) or all(bool(np.isfinite(a).all()) for a in arrays)
