"""``PCFilter``: recursive state estimation as predictive-coding inference on a state-space model.

One step is the PC graph ``s_{t-1} -> s_t -> o_t`` with ``s_{t-1}``, ``a_{t-1}`` and ``o_t``
clamped and ``s_t`` free, whose energy is::

    E_t(s) = 1/2 |o_t - g(s)|^2_{Pi_o} + 1/2 |s - f(m_{t-1}, a_{t-1})|^2_{Pi_prior}

``mode="laplace"`` propagates the prior precision (``P_prior = F P F^T + Q``), relaxes ``s``
by Gauss-Newton steps on ``E_t`` and returns the inverse Gauss-Newton Hessian at the minimum
as the posterior covariance. ``mode="fixed"`` keeps ``Pi_prior`` fixed and relaxes by plain
gradient steps (temporal PC, Millidge et al. 2021).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from ..models.covariance import as_matrix, check_covariance
from ..errors import (DTypeError, DivergenceError, InvalidArgumentError, NonFiniteBeliefError,
                      NotPositiveDefiniteError)
from ..models.state_space import StateSpaceModel
from .belief import Belief
from .small_gauss_newton import SmallGaussNewton, divergence_message, is_finite

Mode = Literal["laplace", "fixed"]


def _symmetric(matrix: Tensor) -> Tensor:
    return 0.5 * (matrix + matrix.mT)


class PCFilter:
    """Batched PC filter over a :class:`~pcctrl.models.StateSpaceModel`.

    ``reset(mean, cov)`` sets the belief over the current state (``(n,)``/``(n, n)`` for one
    filter, ``(B, n)``/``(B, n, n)`` for ``B`` filters at once). ``update(obs, action)`` predicts
    with the action taken since the last belief, then corrects with the observation;
    ``predict(action)`` and ``correct(obs)`` do one half each. NaN entries of ``obs`` are missing
    readings (zero precision: the filter coasts on the model for them). Computation runs in the
    model's dtype, on the model's device (the batch-1 CPU path below computes in float64 and
    stores the belief in the model's dtype). ``run(readings, actions)`` filters a recorded episode.

    Laplace mode: ``iters`` Gauss-Newton steps (default 10, early stop when a step is below
    ``tol`` relative to the state), each with a backtracking line search on ``E_t``
    (``max_halvings``); on a :class:`~pcctrl.models.LinearGaussianModel` one step reaches the
    minimum, so it takes exactly one, in closed form: the Kalman filter's posterior.
    Each Gauss-Newton step is computed in the observation space (the Woodbury form of
    ``(G^T Pi_o G + P_prior^-1)^-1``), as in the iterated extended Kalman filter.

    Fixed mode: ``iters`` (default 20) gradient steps of size ``x_lr`` from the prior mean,
    with the fixed prior precision ``prior_precision`` (default: the process precision
    ``Q^-1``); the covariance returned is the inverse Hessian of that energy. ``x_lr=None``
    takes ``1 / L`` per filter and step, ``L = lmax(Pi_prior) + lmax(Pi_o) |G|_F^2`` a bound on
    the energy's curvature (a fixed ``x_lr`` diverges if above ``2 / lmax`` of the Hessian).

    Divergence guard (``divergence_factor``, default ``1e6``; ``None`` turns it off): a
    relaxation whose energy ``2E`` ends above ``divergence_factor * (2E_0 + p)`` (``2E_0`` at
    the prior mean, ``p`` the number of observed readings) raises
    :class:`~pcctrl.errors.DivergenceError` and keeps the belief. Since ``2E >= |s - mu|^2_{P^-1}``
    this also bounds the step. Laplace mode checks every Gauss-Newton iterate when the line
    search is off (``max_halvings=0``); with it, and on a linear model (closed form), the energy
    cannot rise. Fixed mode checks the end of the relaxation (also when it ended non-finite).

    Batch-1 CPU path (``small_path=True``, the default): a Laplace filter with a single belief
    on a CPU model that is not learnable and has a numpy kernel
    (:meth:`~pcctrl.models.StateSpaceModel.numpy_kernel`: the pendulum and linear-Gaussian
    models) runs the same iteration in float64 numpy (:mod:`.small_gauss_newton`), ~10x
    faster than torch at this size; the belief is stored in the model's dtype. The torch path
    (``small_path=False``) gives the same beliefs (tested to 1e-10 in float64).
    """

    def __init__(self, model: StateSpaceModel, mode: Mode = "laplace", *, iters: int | None = None,
                 x_lr: float | None = None, tol: float | None = 1e-6, prior_precision: Any = None,
                 max_halvings: int = 4, divergence_factor: float | None = 1e6, small_path: bool = True) -> None:
        if not isinstance(model, StateSpaceModel):
            raise InvalidArgumentError("model", f"must be a StateSpaceModel, got {type(model).__name__}")
        if mode not in ("laplace", "fixed"):
            raise InvalidArgumentError("mode", f"must be 'laplace' or 'fixed', got {mode!r}")
        if iters is not None and (isinstance(iters, bool) or not isinstance(iters, int) or iters < 1):
            raise InvalidArgumentError("iters", f"must be an integer >= 1, got {iters!r}")
        if x_lr is not None and (isinstance(x_lr, bool) or not isinstance(x_lr, (int, float)) or not x_lr > 0
                                 or not np.isfinite(x_lr)):
            raise InvalidArgumentError("x_lr", f"must be None or a finite number > 0, got {x_lr!r}")
        if tol is not None and (not isinstance(tol, (int, float)) or not tol >= 0):
            raise InvalidArgumentError("tol", f"must be None or a number >= 0, got {tol!r}")
        if isinstance(max_halvings, bool) or not isinstance(max_halvings, int) or max_halvings < 0:
            raise InvalidArgumentError("max_halvings", f"must be an integer >= 0, got {max_halvings!r}")
        if mode == "laplace" and prior_precision is not None:
            raise InvalidArgumentError("prior_precision", "is only used by mode='fixed'")
        if divergence_factor is not None and (isinstance(divergence_factor, bool)
                                              or not isinstance(divergence_factor, (int, float))
                                              or not 1 < divergence_factor < math.inf):
            raise InvalidArgumentError("divergence_factor", f"must be None or a finite number > 1, "
                                                            f"got {divergence_factor!r}")
        if not isinstance(small_path, bool):
            raise InvalidArgumentError("small_path", f"must be True or False, got {small_path!r}")
        self.model = model
        self.mode: Mode = mode
        self.iters = iters if iters is not None else (10 if mode == "laplace" else 20)
        self.x_lr = None if x_lr is None else float(x_lr)
        self.tol = tol
        self.max_halvings = max_halvings
        self._prior_precision_arg = prior_precision
        self.divergence_factor = None if divergence_factor is None else float(divergence_factor)
        self.small_path = small_path
        self._fast = mode == "laplace" and model.is_linear
        self._small: SmallGaussNewton | None = None
        self.reset()

    # ---- belief ---------------------------------------------------------------------------

    @property
    def belief(self) -> Belief:
        """The current belief (unbatched if the filter was reset with an unbatched belief)."""
        return self._out(self._mean, self._cov)

    @property
    def batch_size(self) -> int | None:
        """Number of filters run at once (``None`` for a single, unbatched filter)."""
        return self._mean.shape[0] if self._batched else None

    def _out(self, mean: Tensor, cov: Tensor) -> Belief:
        return Belief(mean, cov) if self._batched else Belief(mean[0], cov[0])

    @torch.no_grad()
    def reset(self, mean: Any = None, cov: Any = None, batch_size: int | None = None) -> Belief:
        """Set the belief; defaults: zero mean, identity covariance; ``batch_size`` broadcasts."""
        model = self.model
        n = model.state_dim
        self._dtype, self._device = model.dtype, model.device
        self._static = not model.has_learnable
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise InvalidArgumentError("batch_size", f"must be None or an integer >= 1, got {batch_size!r}")
        mean_t = torch.zeros(n) if mean is None else mean
        cov_t = torch.eye(n) if cov is None else cov
        mean_t = self._tensor(mean_t, "mean")
        cov_t = self._tensor(cov_t, "cov")
        if mean_t.ndim not in (1, 2) or mean_t.shape[-1] != n:
            raise InvalidArgumentError("mean", f"expected shape ({n},) or (batch, {n}), got {tuple(mean_t.shape)}")
        if cov_t.ndim not in (2, 3) or tuple(cov_t.shape[-2:]) != (n, n):
            raise InvalidArgumentError("cov", f"expected shape ({n}, {n}) or (batch, {n}, {n}), "
                                              f"got {tuple(cov_t.shape)}")
        batches = {x.shape[0] for x, unbatched in ((mean_t, 1), (cov_t, 2)) if x.ndim > unbatched}
        if batch_size is not None:
            batches.add(batch_size)
        if len(batches) > 1:
            raise InvalidArgumentError("mean", f"batch sizes of mean, cov and batch_size disagree: {sorted(batches)}")
        batched = bool(batches)
        size = batches.pop() if batched else 1
        mean_t = mean_t.expand(size, n).clone()
        cov_t = cov_t.expand(size, n, n).clone()
        if not bool(torch.isfinite(mean_t).all()):
            raise InvalidArgumentError("mean", "contains NaN or inf")
        if not bool(torch.isfinite(cov_t).all()):
            raise InvalidArgumentError("cov", "contains NaN or inf")
        scale = cov_t.abs().amax().clamp_min(torch.finfo(self._dtype).tiny)
        if bool(((cov_t - cov_t.mT).abs().amax() > 1e3 * torch.finfo(self._dtype).eps * scale)):
            raise NotPositiveDefiniteError("cov", "is not symmetric")
        cov_t = _symmetric(cov_t)
        if bool(torch.linalg.cholesky_ex(cov_t)[1].any()):
            raise NotPositiveDefiniteError("cov", "is not positive definite")
        self._constants = self._build_constants()
        self._mean, self._cov, self._batched = mean_t, cov_t, batched
        self._no_action = torch.zeros(size, 0, dtype=self._dtype, device=self._device)
        self._expand_constants()
        self._small = self._make_small()
        self._np_belief: tuple[np.ndarray, np.ndarray] | None = None
        return self.belief

    @torch.no_grad()
    def restore(self, mean: Any, cov: Any) -> Belief:
        """Set the belief bit for bit (e.g. from a checkpoint): checked as by :meth:`reset`, then kept
        exactly as given instead of re-symmetrised."""
        self.reset(mean, cov)
        self._mean = self._tensor(mean, "mean").reshape(self._mean.shape).clone()
        self._cov = self._tensor(cov, "cov").reshape(self._cov.shape).clone()
        return self.belief

    @property
    def prior_precision(self) -> Any:
        """The fixed prior precision given at construction (``mode="fixed"``), or ``None``."""
        return self._prior_precision_arg

    def _make_small(self) -> SmallGaussNewton | None:
        """The batch-1 numpy path where it is valid (see the class docstring), else ``None``."""
        model = self.model
        if (not self.small_path or self.mode != "laplace" or self._mean.shape[0] != 1 or not self._static
                or self._device.type != "cpu" or self._dtype not in (torch.float32, torch.float64)):
            return None
        kernel = model.numpy_kernel()
        if kernel is None:
            return None
        k = self._constants
        self._np_dtype = np.float64 if self._dtype == torch.float64 else np.float32
        return SmallGaussNewton(kernel, k["Q"].double().numpy(), k["R"].double().numpy(), model.is_linear, self.iters,
                                self.tol, self.max_halvings, self.divergence_factor)

    def _expand_constants(self) -> None:
        """Views of the linear model's matrices over the batch, for ``bmm`` in the closed form."""
        size = self._mean.shape[0]
        k = self._constants
        self._batch_consts = {} if not self._fast else {
            name: matrix.expand(size, *matrix.shape)
            for name, matrix in (("A", k["A"]), ("AT", k["A"].mT), ("B", k["B"]), ("C", k["C"]), ("CT", k["C"].mT),
                                 ("Q", k["Q"]), ("R", k["R"]))
        }

    def _build_constants(self) -> dict[str, Tensor]:
        model = self.model
        consts = {"Q": model.process_cov().detach(), "R": model.obs_cov().detach()}
        consts["R_chol"] = torch.linalg.cholesky(consts["R"])
        consts["R_white"] = torch.linalg.solve_triangular(
            consts["R_chol"], torch.eye(model.obs_dim, dtype=self._dtype, device=self._device), upper=False)
        if self._fast:
            consts.update(A=model.A.detach(), B=model.B.detach(), C=model.C.detach())
        if self.mode == "fixed":
            if self._prior_precision_arg is None:
                try:
                    prec = model.process_noise.precision().detach()
                except NotPositiveDefiniteError as exc:
                    raise InvalidArgumentError(
                        "prior_precision", "the model's process covariance is singular; pass prior_precision"
                    ) from exc
            else:
                prec = check_covariance(
                    as_matrix(self._prior_precision_arg, model.state_dim, "prior_precision", self._dtype),
                    "prior_precision", False,
                )
            consts["prior_precision"] = prec.to(self._device)
            consts["prior_cov"] = torch.cholesky_inverse(torch.linalg.cholesky(consts["prior_precision"]))
            consts["prior_lmax"] = torch.linalg.eigvalsh(consts["prior_precision"])[-1]
            consts["obs_lmax"] = 1.0 / torch.linalg.eigvalsh(consts["R"])[0]
        return consts

    def _current_constants(self) -> dict[str, Tensor]:
        model = self.model
        reference = model._reference()
        if reference.dtype != self._dtype or reference.device != self._device:
            self._dtype, self._device = model.dtype, model.device
            self._mean = self._mean.to(self._device, self._dtype)
            self._cov = self._cov.to(self._device, self._dtype)
            self._no_action = self._no_action.to(self._device, self._dtype)
            self._constants = self._build_constants()
            self._expand_constants()
            self._small = self._make_small()
            self._np_belief = None
        elif not self._static:
            self._constants = self._build_constants()
            self._expand_constants()
        return self._constants

    # ---- inputs ---------------------------------------------------------------------------

    def _tensor(self, value: Any, name: str) -> Tensor:
        if value.is_complex() if isinstance(value, Tensor) else np.iscomplexobj(value):
            raise DTypeError(name, "is complex; the filter takes real readings and actions")
        try:
            return torch.as_tensor(value, dtype=self._dtype, device=self._device)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InvalidArgumentError(name, f"cannot be read as a tensor ({exc})") from exc

    def _shaped(self, value: Any, name: str, size: int) -> Tensor:
        tensor = self._tensor(value, name)
        if tensor.requires_grad:
            tensor = tensor.detach()
        expected = (self._mean.shape[0], size) if self._batched else (size,)
        if tuple(tensor.shape) != expected:
            raise InvalidArgumentError(name, f"expected shape {expected}, got {tuple(tensor.shape)}")
        return tensor if self._batched else tensor.unsqueeze(0)

    def _observation(self, obs: Any) -> tuple[Tensor, Tensor | None]:
        tensor = self._shaped(obs, "obs", self.model.obs_dim)
        # One reduction first: a finite sum means every entry is finite.
        if math.isfinite(float(tensor.sum())) or bool(torch.isfinite(tensor).all()):
            return tensor, None
        if bool(torch.isinf(tensor).any()):
            raise InvalidArgumentError("obs", "contains +-inf; mark a missing reading with NaN")
        observed = ~torch.isnan(tensor)
        return torch.where(observed, tensor, torch.zeros((), dtype=tensor.dtype, device=tensor.device)), observed

    def _action(self, action: Any) -> Tensor:
        size = self.model.action_dim
        if size == 0 and (action is None or np.size(action) == 0):
            return self._no_action
        if action is None:
            raise InvalidArgumentError("action", f"is required: the model takes an action of size {size}")
        tensor = self._shaped(action, "action", size)
        if not math.isfinite(float(tensor.sum())) and not bool(torch.isfinite(tensor).all()):
            raise InvalidArgumentError("action", "contains NaN or inf")
        return tensor

    # ---- public steps ---------------------------------------------------------------------

    @torch.no_grad()
    def update(self, obs: Any, action: Any = None) -> Belief:
        """Predict with ``action`` (taken since the last belief), correct with ``obs``; commit."""
        consts = self._current_constants()
        small = self._small
        if small is not None:
            obs_np, observed_np = self._small_observation(obs)
            mu, prior = small.predict(*self._small_belief(), self._small_action(action))
            return self._commit_small(*small.correct(mu, prior, obs_np, observed_np))
        obs_t, observed = self._observation(obs)
        action_t = self._action(action)
        if self._fast and observed is None:
            mean, cov = self._kalman(consts, obs_t, action_t, True)
        else:
            mu, prior = self._predict(consts, action_t)
            mean, cov = self._correct(consts, mu, prior, obs_t, observed)
        return self._commit(mean, cov)

    @torch.no_grad()
    def predict(self, action: Any = None) -> Belief:
        """Advance the belief by the model only (no observation); commit."""
        consts = self._current_constants()
        if self._small is not None:
            return self._commit_small(*self._small.predict(*self._small_belief(), self._small_action(action)))
        mean, cov = self._predict(consts, self._action(action))
        return self._commit(mean, cov)

    @torch.no_grad()
    def correct(self, obs: Any) -> Belief:
        """Incorporate ``obs`` into the current belief without a transition (e.g. the first reading)."""
        consts = self._current_constants()
        if self._small is not None:
            obs_np, observed_np = self._small_observation(obs)
            return self._commit_small(*self._small.correct(*self._small_belief(), obs_np, observed_np))
        obs_t, observed = self._observation(obs)
        if self._fast and observed is None:
            mean, cov = self._kalman(consts, obs_t, self._no_action, False)
        else:
            prior = self._cov if self.mode == "laplace" else consts["prior_cov"].expand_as(self._cov)
            mean, cov = self._correct(consts, self._mean, prior, obs_t, observed)
        return self._commit(mean, cov)

    def _commit(self, mean: Tensor, cov: Tensor) -> Belief:
        # One reduction first: the sum of finite entries is finite unless it overflows.
        if not math.isfinite(float(mean.sum() + cov.sum())) and not bool(
                torch.isfinite(mean).all() & torch.isfinite(cov).all()):
            raise NonFiniteBeliefError("the filter step produced NaN or inf; the previous belief is kept")
        self._mean, self._cov = mean, cov
        self._np_belief = None
        return self._out(mean, cov)

    @torch.no_grad()
    def run(self, readings: Any, actions: Any = None, mean: Any = None, cov: Any = None) -> Belief:
        """Filter a recorded episode: ``reset(mean, cov)``, ``correct(readings[0])``, then
        ``update(readings[t], actions[t - 1])`` for ``t = 1 .. T-1``; the beliefs stacked over time.

        ``readings``: ``(T, obs_dim)``, or ``(T, B, obs_dim)`` for ``B`` filters (time first;
        NaN entries are missing). ``actions``: ``(T-1, ...)`` or ``(T, ...)`` (the last, taken
        after the last reading, is then unused) of shape ``(action_dim,)`` / ``(B, action_dim)``;
        ``None`` for a model without actions. Returns a :class:`Belief` with mean ``(T, [B,] n)``
        and covariance ``(T, [B,] n, n)``. A step that raises leaves the filter at the belief
        before it.
        """
        obs = self._sequence(readings, "readings")
        if obs.ndim not in (2, 3) or obs.shape[0] < 1 or obs.shape[-1] != self.model.obs_dim:
            raise InvalidArgumentError("readings", f"expected shape (T, {self.model.obs_dim}) or (T, batch, "
                                                   f"{self.model.obs_dim}) with T >= 1, got {tuple(obs.shape)}")
        steps = obs.shape[0]
        if actions is None:
            if self.model.action_dim and steps > 1:
                raise InvalidArgumentError("actions", f"is required: the model takes an action of size "
                                                      f"{self.model.action_dim}")
            acts = None
        else:
            acts = self._sequence(actions, "actions")
            if acts.ndim < 1 or acts.shape[0] not in (steps - 1, steps):
                raise InvalidArgumentError("actions", f"needs {steps - 1} (or {steps}) actions for {steps} readings, "
                                                      f"got shape {tuple(acts.shape)}")
        self.reset(mean, cov, batch_size=obs.shape[1] if obs.ndim == 3 else None)
        beliefs = [self.correct(obs[0])]
        for t in range(1, steps):
            beliefs.append(self.update(obs[t], None if acts is None else acts[t - 1]))
        return Belief(torch.stack([b.mean for b in beliefs]), torch.stack([b.cov for b in beliefs]))

    def _sequence(self, value: Any, name: str) -> np.ndarray | Tensor:
        if isinstance(value, Tensor):
            return value.detach()
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(name, f"cannot be read as an array ({exc})") from exc
        if array.dtype.kind == "c":
            raise DTypeError(name, "is complex; the filter takes real readings and actions")
        if array.dtype.kind not in "fiub":
            raise InvalidArgumentError(name, f"must be numeric, got dtype {array.dtype}")
        return array

    # ---- the batch-1 numpy path -----------------------------------------------------------

    def _small_array(self, value: Any, name: str, size: int) -> np.ndarray:
        if isinstance(value, Tensor):
            if value.is_complex():
                raise DTypeError(name, "is complex; the filter takes real readings and actions")
            value = value.detach().cpu().double().numpy()  # any real dtype (bfloat16 has no numpy twin)
        try:
            array = np.asarray(value)
            if array.dtype.kind == "c":
                raise DTypeError(name, "is complex; the filter takes real readings and actions")
            array = array.astype(np.float64, copy=False)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidArgumentError):
                raise
            raise InvalidArgumentError(name, f"cannot be read as a tensor ({exc})") from exc
        expected = (1, size) if self._batched else (size,)
        if array.shape != expected:
            raise InvalidArgumentError(name, f"expected shape {expected}, got {array.shape}")
        return array.reshape(size)

    def _small_observation(self, obs: Any) -> tuple[np.ndarray, np.ndarray | None]:
        array = self._small_array(obs, "obs", self.model.obs_dim)
        if math.isfinite(sum(array.tolist())) or bool(np.isfinite(array).all()):
            return array, None
        if bool(np.isinf(array).any()):
            raise InvalidArgumentError("obs", "contains +-inf; mark a missing reading with NaN")
        observed = ~np.isnan(array)
        return np.where(observed, array, 0.0), observed

    def _small_action(self, action: Any) -> np.ndarray:
        size = self.model.action_dim
        if size == 0 and (action is None or np.size(action) == 0):
            return np.zeros(0)
        if action is None:
            raise InvalidArgumentError("action", f"is required: the model takes an action of size {size}")
        array = self._small_array(action, "action", size)
        if not math.isfinite(sum(array.tolist())) and not bool(np.isfinite(array).all()):
            raise InvalidArgumentError("action", "contains NaN or inf")
        return array

    def _small_belief(self) -> tuple[np.ndarray, np.ndarray]:
        if self._np_belief is None:
            self._np_belief = (self._mean[0].double().numpy(), self._cov[0].double().numpy())
        return self._np_belief

    def _commit_small(self, mean: np.ndarray, cov: np.ndarray) -> Belief:
        if not is_finite(mean, cov):
            raise NonFiniteBeliefError("the filter step produced NaN or inf; the previous belief is kept")
        if self._np_dtype is np.float64:
            stored = mean, cov
        else:
            stored = mean.astype(self._np_dtype), cov.astype(self._np_dtype)
            mean, cov = stored[0].astype(np.float64), stored[1].astype(np.float64)
        self._np_belief = (mean, cov)
        # numpy's [None] view is cheaper than torch's unsqueeze; both tensors share the arrays.
        self._mean, self._cov = torch.from_numpy(stored[0][None]), torch.from_numpy(stored[1][None])
        if self._batched:
            return Belief(self._mean, self._cov)
        return Belief(torch.from_numpy(stored[0]), torch.from_numpy(stored[1]))

    # ---- the maths ------------------------------------------------------------------------

    def _kalman(self, k: dict[str, Tensor], obs: Tensor, action: Tensor, predict: bool) -> tuple[Tensor, Tensor]:
        """Linear model, every entry observed: the one Gauss-Newton step, in closed form.

        Few, batched (``bmm``) ops: per-op overhead dominates at small sizes.
        """
        b = self._batch_consts
        mu = self._mean.unsqueeze(-1)
        prior = self._cov
        if predict:
            mu = torch.bmm(b["A"], mu) if action.shape[1] == 0 else torch.baddbmm(
                torch.bmm(b["B"], action.unsqueeze(-1)), b["A"], mu)
            prior = torch.baddbmm(b["Q"], torch.bmm(b["A"], prior), b["AT"])
        innovation = torch.baddbmm(obs.unsqueeze(-1), b["C"], mu, alpha=-1)
        cross = torch.bmm(prior, b["CT"])
        try:
            chol = torch.linalg.cholesky(torch.baddbmm(b["R"], b["C"], cross))
        except RuntimeError as exc:
            raise NotPositiveDefiniteError(
                "obs", "the innovation covariance C P C^T + R is not positive definite (ill-conditioned belief)"
            ) from exc
        white = torch.linalg.solve_triangular(chol, cross.mT, upper=False)
        z = torch.linalg.solve_triangular(chol, innovation, upper=False)
        mean = torch.baddbmm(mu, white.mT, z).squeeze(-1)
        cov = torch.baddbmm(prior, white.mT, white, alpha=-1)
        return mean, cov

    @staticmethod
    def _innovation_cholesky(s: Tensor) -> Tensor:
        chol, info = torch.linalg.cholesky_ex(s)
        if bool(info.any()):
            raise NotPositiveDefiniteError(
                "obs", "the innovation covariance G P G^T + R is not positive definite (ill-conditioned belief)"
            )
        return chol

    def _predict(self, k: dict[str, Tensor], action: Tensor) -> tuple[Tensor, Tensor]:
        model = self.model
        if self.mode == "fixed":
            return model.transition(self._mean, action), k["prior_cov"].expand_as(self._cov)
        mu, jac = model.linearize_transition(self._mean, action)
        return mu, _symmetric(torch.baddbmm(k["Q"], torch.bmm(jac, self._cov), jac.mT))

    def _masked_noise(self, k: dict[str, Tensor], observed: Tensor | None) -> tuple[Tensor, Tensor]:
        """Observation covariance with missing rows/columns replaced by the identity, and its factor.

        With the residual and the Jacobian zeroed on missing entries this weighs the observed
        block by the inverse of its own covariance: zero precision for the missing ones.
        """
        if observed is None:
            return k["R"], k["R_chol"]
        obs = observed.to(k["R"].dtype)
        masked = obs.unsqueeze(-1) * k["R"] * obs.unsqueeze(-2) + torch.diag_embed(1 - obs)
        return masked, torch.linalg.cholesky(masked)

    def _linearize_obs(self, s: Tensor, observed: Tensor | None) -> tuple[Tensor, Tensor]:
        y, jac = self.model.linearize_observation(s)
        if observed is not None:
            jac = jac * observed.unsqueeze(-1).to(jac.dtype)
        return y, jac

    @staticmethod
    def _residual(obs: Tensor, y: Tensor, observed: Tensor | None) -> Tensor:
        r = obs - y
        return r if observed is None else r * observed.to(r.dtype)

    def _correct(self, k: dict[str, Tensor], mu: Tensor, prior: Tensor, obs: Tensor,
                 observed: Tensor | None) -> tuple[Tensor, Tensor]:
        noise, noise_chol = self._masked_noise(k, observed)
        if self.mode == "fixed":
            return self._relax_fixed(k, mu, obs, observed, noise_chol)
        noise_white = k["R_white"] if observed is None else torch.linalg.solve_triangular(
            noise_chol, torch.eye(noise_chol.shape[-1], dtype=noise_chol.dtype, device=noise_chol.device), upper=False)
        return self._relax_gauss_newton(mu, prior, obs, observed, noise, noise_white)

    def _relax_gauss_newton(self, mu: Tensor, prior: Tensor, obs: Tensor, observed: Tensor | None,
                            noise: Tensor, noise_white: Tensor) -> tuple[Tensor, Tensor]:
        """Gauss-Newton relaxation of ``E_t`` from ``mu``; ``(mean, inverse Gauss-Newton Hessian)``.

        The line search's first candidate (the full step) is where the next iteration linearizes,
        so a step that lowers the energy costs no extra model call; only a step that raises it
        backtracks (:meth:`_backtrack`). One host sync per iteration reads every stop and error flag.
        """
        prior_chol, info = torch.linalg.cholesky_ex(prior)
        if bool(info.any()):
            raise NotPositiveDefiniteError("cov", "the predicted covariance is not positive definite")
        linear = self.model.is_linear
        search = not linear and self.max_halvings > 0
        # With the line search the energy never rises; the closed form (linear) lands on the minimum.
        guard = not linear and not search and self.divergence_factor is not None
        tol = None if linear else self.tol
        s, d, n = mu, torch.zeros_like(mu), mu.shape[-1]
        y, jac = self._linearize_obs(s, observed)
        r = self._residual(obs, y, observed)
        mu_col = mu.unsqueeze(-1)
        if search or guard:
            weight = self._whitener(noise_white, prior_chol)
            energy = start = self._quadratic(weight, r, d)
        if guard:
            bound = self.divergence_factor * (start + (obs.shape[-1] if observed is None else observed.sum(-1)))
        if tol is not None:
            tol_row = torch.tensor([1.0, -tol], dtype=s.dtype, device=s.device)
            active = torch.ones(s.shape[0], dtype=torch.bool, device=s.device)
            zero = torch.zeros((), dtype=s.dtype, device=s.device)
        failed = None
        for _ in range(1 if linear else self.iters):
            cross = torch.bmm(prior, jac.mT)
            chol, info = torch.linalg.cholesky_ex(torch.baddbmm(noise, jac, cross))
            failed = info if failed is None else failed.bitwise_or_(info)
            v = torch.baddbmm(r.unsqueeze(-1), jac, d.unsqueeze(-1))
            # [L^-1 G P, L^-1 v] with L L^T = G P G^T + R: the step is mu + (L^-1 G P)^T L^-1 v - s.
            white = torch.linalg.solve_triangular(chol, torch.cat((cross.mT, v), dim=-1), upper=False)
            step = torch.baddbmm(mu_col, white[..., :n].mT, white[..., n:]).squeeze(-1) - s
            if tol is not None:
                # Converged filters stop moving, so a filter's result never depends on its batch mates.
                step = torch.where(active.unsqueeze(-1), step, zero)
            candidate = s + step
            y, jac = self._linearize_obs(candidate, observed)
            r = self._residual(obs, y, observed)
            d = candidate - mu
            flags = []
            if search or guard:
                new_energy = self._quadratic(weight, r, d)
            if search:
                worse = (new_energy <= energy * self._accept(energy)).logical_not_()
                flags.append(worse)
            if guard:
                flags.append(new_energy > bound)
            if tol is not None:
                moving = self._moving(active, step, candidate, tol, tol_row)
                flags.append(moving)
            state = torch.stack(flags).any(-1).tolist() if flags else []
            if guard and state[0]:
                worst = int(torch.argmax(new_energy / bound))
                raise DivergenceError(divergence_message(float(start[worst]), float(new_energy[worst]),
                                                         self.divergence_factor))
            if search and state[0]:
                step = self._backtrack(s, step, worse, mu, energy, obs, observed, weight)
                candidate = s + step
                y, jac = self._linearize_obs(candidate, observed)
                r = self._residual(obs, y, observed)
                d = candidate - mu
                new_energy = self._quadratic(weight, r, d)
                if tol is not None:
                    moving = self._moving(active, step, candidate, tol, tol_row)
                    state[-1] = bool(moving.any())
            s = candidate
            if search or guard:
                energy = new_energy
            if tol is not None:
                active = moving
                if not state[-1]:
                    break
        if failed is not None and bool(failed.any()):
            raise NotPositiveDefiniteError(
                "obs", "the innovation covariance G P G^T + R is not positive definite (ill-conditioned belief)"
            )
        cross = torch.bmm(prior, jac.mT)
        chol = self._innovation_cholesky(torch.baddbmm(noise, jac, cross))
        white = torch.linalg.solve_triangular(chol, cross.mT, upper=False)
        return s, _symmetric(torch.baddbmm(prior, white.mT, white, alpha=-1))

    @staticmethod
    def _accept(energy: Tensor) -> float:
        """Line-search slack: a step is kept unless it raises ``2E`` past rounding (1e-12 relative,
        or 64 ulps in float32, where 1e-12 is below the resolution and noise would backtrack)."""
        return 1 + max(1e-12, 64 * torch.finfo(energy.dtype).eps)

    @staticmethod
    def _moving(active: Tensor, step: Tensor, s: Tensor, tol: float, tol_row: Tensor) -> Tensor:
        """Filters still moving: active and ``max|step| > tol (1 + max|s|)``; ``tol_row = [1, -tol]``."""
        largest = torch.stack((step, s), dim=-2).abs().amax(-1)
        return active & ((largest @ tol_row) > tol)

    @staticmethod
    def _whitener(noise_white: Tensor, prior_chol: Tensor) -> Tensor:
        """``W = blockdiag(L_R^-1, L_P^-1)``: ``2 E_t = |W [r; s - mu]|^2``."""
        batch, p, n = prior_chol.shape[0], noise_white.shape[-1], prior_chol.shape[-1]
        weight = prior_chol.new_zeros(batch, p + n, p + n)
        weight[:, :p, :p] = noise_white
        weight[:, p:, p:] = torch.linalg.solve_triangular(
            prior_chol, torch.eye(n, dtype=prior_chol.dtype, device=prior_chol.device), upper=False)
        return weight

    @staticmethod
    def _quadratic(weight: Tensor, r: Tensor, d: Tensor) -> Tensor:
        """``2 E_t`` per filter, shape ``(B,)``."""
        e = torch.bmm(weight, torch.cat((r, d), dim=-1).unsqueeze(-1))
        return torch.bmm(e.mT, e).view(-1)

    def _backtrack(self, s: Tensor, step: Tensor, worse: Tensor, mu: Tensor, energy: Tensor, obs: Tensor,
                   observed: Tensor | None, weight: Tensor) -> Tensor:
        """Halve the steps of the filters whose full step raised ``E_t`` until it does not (else no step)."""
        ok = ~worse
        alpha = torch.where(ok, 1.0, 0.5).to(s.dtype)
        for halving in range(1, self.max_halvings + 1):
            candidate = s + alpha.unsqueeze(-1) * step
            r = self._residual(obs, self.model.observe(candidate), observed)
            ok = self._quadratic(weight, r, candidate - mu) <= energy * self._accept(energy)
            if halving == self.max_halvings or bool(ok.all()):
                break
            alpha = torch.where(ok, alpha, 0.5 * alpha)
        return torch.where(ok, alpha, torch.zeros_like(alpha)).unsqueeze(-1) * step

    def _relax_fixed(self, k: dict[str, Tensor], mu: Tensor, obs: Tensor, observed: Tensor | None,
                     noise_chol: Tensor) -> tuple[Tensor, Tensor]:
        prior_precision = k["prior_precision"]
        s = mu
        for i in range(self.iters):
            y, jac = self._linearize_obs(s, observed)
            r = self._residual(obs, y, observed)
            weighted = torch.cholesky_solve(r.unsqueeze(-1), noise_chol)
            if i == 0:
                start = (r.unsqueeze(-2) @ weighted).view(-1)
            grad = (s - mu) @ prior_precision - (jac.mT @ weighted).squeeze(-1)
            if self.x_lr is None:
                curvature = k["prior_lmax"] + k["obs_lmax"] * jac.square().sum((-2, -1))
                s = s - grad / curvature.unsqueeze(-1)
            else:
                s = s - self.x_lr * grad
        y, jac = self._linearize_obs(s, observed)
        if self.divergence_factor is not None:
            self._check_fixed_energy(start, s - mu, self._residual(obs, y, observed), observed, noise_chol,
                                     prior_precision)
        hessian = jac.mT @ torch.cholesky_solve(jac, noise_chol) + prior_precision
        return s, torch.cholesky_inverse(torch.linalg.cholesky(_symmetric(hessian)))

    def _check_fixed_energy(self, start: Tensor, d: Tensor, r: Tensor, observed: Tensor | None, noise_chol: Tensor,
                            prior_precision: Tensor) -> None:
        """Fixed mode's divergence guard on the energy where the gradient steps ended."""
        end = (r.unsqueeze(-2) @ torch.cholesky_solve(r.unsqueeze(-1), noise_chol)).view(-1) \
            + ((d @ prior_precision) * d).sum(-1)
        bound = self.divergence_factor * (start + (r.shape[-1] if observed is None else observed.sum(-1)))
        bad = ~(end <= bound) & torch.isfinite(start)
        if bool(bad.any()):
            worst = int(torch.nonzero(bad)[0])
            raise DivergenceError(divergence_message(float(start[worst]), float(end[worst]), self.divergence_factor)
                                  .replace("Gauss-Newton", "gradient-step").replace(
                                      "enable the line search, max_halvings > 0", "lower x_lr or use x_lr=None"))
