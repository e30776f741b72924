"""``DynamicsEnsemble``: N probabilistic dynamics networks learned by the PC core, batched."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..core import PCNetwork, Precision
from ..core.learning import ALGORITHMS
from .ensemble_rollout import EnsembleRollout, soft_log_precision
from .normalizer import Normalizer
from .rollout_loss import RolloutLoss, check_rollout_steps, sequence_starts

from ..errors import DivergenceError, InvalidArgumentError, NonFiniteError, ShapeError

TRAINERS: tuple[str, ...] = (*ALGORITHMS, "bp")


class EnsembleLinear(nn.Module):
    """``members`` independent affine maps applied in one batched einsum.

    Input ``(B, members, in)``, output ``(B, members, out)``: member ``k`` sees only slice ``k``,
    so one PC graph over these layers holds ``members`` disconnected networks whose energies
    (and so local updates) do not interact.
    """

    def __init__(self, members: int, in_features: int, out_features: int, generator: torch.Generator) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter((torch.rand(members, in_features, out_features, generator=generator) * 2 - 1) * bound)
        self.bias = nn.Parameter((torch.rand(members, out_features, generator=generator) * 2 - 1) * bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.einsum("bki,kio->bko", x, self.weight) + self.bias


class Prediction(NamedTuple):
    """Next-state prediction of every member: mean and variance ``(..., members, obs_dim)``."""

    mean: Tensor
    var: Tensor


class DynamicsEnsemble(nn.Module):
    """Predicts ``s' - s`` from ``(s, a)`` with ``members`` MLPs trained by predictive coding.

    Each member's output node carries a learnable diagonal :class:`pcctrl.Precision`, so the
    node's energy ``1/2 eps^T Pi eps - 1/2 log det Pi`` *is* the Gaussian negative log-likelihood
    of the (normalised) state change: the mean comes from the network, the precision is learned
    by the same local rule (one precision per member and state entry, i.e. homoscedastic noise).
    All members live in one :class:`pcctrl.PCNetwork` over :class:`EnsembleLinear` layers, so one
    ``train_step`` trains all of them (each on its own bootstrap resample) and one forward call
    evaluates all of them. ``trainer`` is a PC algorithm (``"exact"``, ``"fpa"``, ``"il"``,
    ``"ipc"``) or ``"bp"``: the same energy minimised by autograd, for ablation.

    With ``heteroscedastic=True`` the precision is input-dependent instead: each member's last
    layer also outputs a log precision per state entry (soft-bounded to
    ``[-max_log_precision, max_log_precision]``), and the output node is clamped at
    ``out - dNLL/dout`` (the per-sample Gaussian NLL's error at the output), so the PC relaxation
    and local updates learn mean and precision together (under ``"exact"`` this equals backprop
    of the heteroscedastic NLL).

    A fit that diverges (a non-finite loss or parameter, a PC error from the core, or a batch NLL
    that grows past ``divergence_margin * max(1, |first NLL|)`` above the first step's) restores
    the weights, normalisers and optimizer state from before the fit and raises
    :class:`~pcctrl.errors.DivergenceError`.
    """

    def __init__(self, obs_dim: int, action_dim: int, members: int = 5, hidden: tuple[int, ...] = (200, 200), *,
                 trainer: str = "exact", T: int | None = None, x_lr: float | None = None, lr: float = 1e-3,
                 weight_decay: float = 1e-5, batch_size: int = 256, max_log_precision: float = 8.0,
                 heteroscedastic: bool = False, divergence_margin: float = 1e3, seed: int = 0) -> None:
        super().__init__()
        if obs_dim < 1 or action_dim < 1:
            raise InvalidArgumentError("obs_dim", f"and action_dim must be positive, got {obs_dim}, {action_dim}")
        if members < 1:
            raise InvalidArgumentError("members", f"must be at least 1, got {members}")
        if not hidden or any(h < 1 for h in hidden):
            raise InvalidArgumentError("hidden", f"must be a non-empty tuple of positive widths, got {hidden}")
        if trainer not in TRAINERS:
            raise InvalidArgumentError("trainer", f"unknown trainer {trainer!r}; choose one of {list(TRAINERS)}")
        if batch_size < 1 or not lr > 0:
            raise InvalidArgumentError("batch_size", f"and lr must be positive, got {batch_size}, {lr}")
        self.obs_dim, self.action_dim, self.members = obs_dim, action_dim, members
        self.hidden, self.trainer, self.batch_size = tuple(hidden), trainer, batch_size
        self.max_log_precision = float(max_log_precision)
        self.heteroscedastic, self.divergence_margin = bool(heteroscedastic), float(divergence_margin)
        self.lr, self.weight_decay = lr, weight_decay
        self._generator = torch.Generator().manual_seed(seed)
        sizes = (obs_dim + action_dim, *hidden, 2 * obs_dim if heteroscedastic else obs_dim)
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(EnsembleLinear(members, n_in, n_out, self._generator))
            if i < len(sizes) - 2:
                layers.append(nn.SiLU())
        self.precision: Precision | None = None
        precisions = {}
        if not heteroscedastic:
            self.precision = Precision.diagonal(torch.ones(members, obs_dim), learnable=True)
            precisions = {f"x{len(layers)}": self.precision}
        self.net = PCNetwork(nn.Sequential(*layers), algorithm="exact" if trainer == "bp" else trainer, T=T,
                             x_lr=x_lr, precisions=precisions)
        self.input_norm = Normalizer(obs_dim + action_dim)
        self.target_norm = Normalizer(obs_dim)
        # The precision gets a faster rate: it only rescales errors, and at the networks' rate it
        # would lag far behind the fitted means within the few hundred steps of a refit.
        weights = [p for n, p in self.net.named_parameters() if not n.startswith("precisions.")]
        groups: list[dict[str, Any]] = [{"params": weights, "weight_decay": weight_decay}]
        if self.precision is not None:
            groups.append({"params": [self.precision.raw], "lr": 10 * lr, "weight_decay": 0.0})
        self.optimizer = torch.optim.Adam(groups, lr=lr)
        self.n_fits = 0

    @property
    def device(self) -> torch.device:
        return self.input_norm.mean.device

    def snapshot(self) -> dict[str, Any]:
        """A copy of the weights, normalisers, optimizer state and fit count (see :meth:`restore`)."""
        return {"model": copy.deepcopy(self.state_dict()), "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                "n_fits": self.n_fits}

    def restore(self, snap: dict[str, Any]) -> None:
        """Return to a :meth:`snapshot` (the random generator keeps advancing)."""
        self.load_state_dict(snap["model"])
        self.optimizer.load_state_dict(snap["optimizer"])
        self.n_fits = int(snap["n_fits"])

    def _log_precision(self, raw: Tensor) -> Tensor:
        """Soft bound of a heteroscedastic head to ``[-max_log_precision, max_log_precision]``."""
        return soft_log_precision(raw, self.max_log_precision)

    def _heads(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised mean and log precision ``(..., obs_dim)`` from the network output."""
        if self.heteroscedastic:
            return z[..., :self.obs_dim], self._log_precision(z[..., self.obs_dim:])
        assert self.precision is not None
        return z, self.precision.raw.expand_as(z)

    def _check(self, obs: Tensor, actions: Tensor) -> None:
        if obs.shape[-1] != self.obs_dim or actions.shape[-1] != self.action_dim:
            raise ShapeError("obs", f"expected obs (..., {self.obs_dim}) and actions (..., {self.action_dim}), "
                             f"got {tuple(obs.shape)} and {tuple(actions.shape)}")

    def fit(self, obs: Tensor, actions: Tensor, next_obs: Tensor, steps: int,
            refit_normalizers: bool = True, *, rollout_steps: int = 1,
            episode_ends: Tensor | None = None) -> list[float]:
        """``steps`` learning steps on bootstrap minibatches; returns the batch NLL per step.

        Each member draws its own minibatch indices with replacement (bagging); the normalisers
        are refitted to the data first unless ``refit_normalizers=False``.

        ``rollout_steps=k > 1`` trains on the k-step open-loop rollout loss instead
        (:mod:`pcctrl.models.rollout_loss`: one PC graph over the unrolled members): the rows must
        then be in time order, and each member draws runs of ``k`` consecutive transitions that
        stay within one episode (``next_obs[i] == obs[i+1]``, and ``episode_ends[i]`` false if
        given); the returned NLL is the rollout loss divided by ``k``. ``k = 1`` is the one-step fit.
        """
        self._check(obs, actions)
        if obs.ndim != 2 or obs.shape != next_obs.shape or obs.shape[0] != actions.shape[0] or obs.shape[0] < 1:
            raise ShapeError("obs", f"fit needs obs, actions, next_obs of shapes (n, {self.obs_dim}), (n, {self.action_dim}), "
                             f"(n, {self.obs_dim}), got {tuple(obs.shape)}, {tuple(actions.shape)}, {tuple(next_obs.shape)}")
        if steps < 0:
            raise InvalidArgumentError("steps", f"must be non-negative, got {steps}")
        k = check_rollout_steps(rollout_steps)
        device = self.device
        inputs = torch.cat((obs, actions), -1).to(device, torch.float32)
        targets = (next_obs - obs).to(device, torch.float32)
        if not bool(torch.isfinite(inputs).all() and torch.isfinite(targets).all()):
            raise InvalidArgumentError("obs", "training data must be finite")
        starts = None
        if k > 1:
            obs, actions, next_obs = (v.to(device, torch.float32) for v in (obs, actions, next_obs))
            starts = sequence_starts(obs, next_obs, k, None if episode_ends is None else episode_ends.to(device))
        snap = self.snapshot()
        try:
            if refit_normalizers:
                self.input_norm.fit(inputs)
                self.target_norm.fit(targets)
            if starts is None:
                losses = self._train(self.input_norm(inputs), self.target_norm(targets), steps)
            else:
                losses = self._train_rollout(RolloutLoss(self, k), (obs, actions, next_obs), starts, steps)
        except (NonFiniteError, DivergenceError, FloatingPointError) as exc:
            self.restore(snap)
            raise DivergenceError(f"the ensemble's fit diverged ({exc}); the previous model, normalisers and "
                                  "optimizer state were kept") from exc
        self.n_fits += 1
        return losses

    def _train(self, x_all: Tensor, y_all: Tensor, steps: int) -> list[float]:
        """``steps`` minibatch steps on normalised data; raises on divergence (caller restores)."""
        n = x_all.shape[0]
        batch = min(self.batch_size, n)
        losses: list[float] = []
        for _ in range(steps):
            idx = torch.randint(n, (batch, self.members), generator=self._generator).to(x_all.device)
            x, y = x_all[idx], y_all[idx]
            if self.trainer == "bp":
                self.optimizer.zero_grad()
                loss = self._nll(self.net(x), y)
                loss.backward()
                self.optimizer.step()
                value = float(loss.detach())
            else:
                self.net.train_step(x, self._pc_target(x, y), self.optimizer)
                with torch.no_grad():
                    value = float(self._nll(self.net(x), y))
            self._end_step(value, losses)
        return losses

    def _train_rollout(self, loss: RolloutLoss, data: tuple[Tensor, Tensor, Tensor], starts: Tensor,
                       steps: int) -> list[float]:
        """``steps`` k-step rollout-loss steps on runs from ``starts`` (raw data; caller restores)."""
        batch = min(self.batch_size, starts.numel())
        losses: list[float] = []
        for _ in range(steps):
            pick = torch.randint(starts.numel(), (batch, self.members), generator=self._generator)
            s0, s_next, acts = loss.batch(*data, starts[pick.to(starts.device)])
            if self.trainer == "bp":
                self.optimizer.zero_grad()
                total = loss.nll(s0, s_next, acts)
                total.backward()
                self.optimizer.step()
                value = float(total.detach()) / loss.k
            else:
                loss.train_step(s0, s_next, acts, self.optimizer)
                with torch.no_grad():
                    value = float(loss.nll(s0, s_next, acts)) / loss.k
            self._end_step(value, losses)
        return losses

    def _end_step(self, value: float, losses: list[float]) -> None:
        """After a weight step: bound the precision, check for divergence, record the batch NLL."""
        if self.precision is not None:
            with torch.no_grad():
                self.precision.raw.clamp_(-self.max_log_precision, self.max_log_precision)
        self._check_divergence(value, losses[0] if losses else value)
        losses.append(value)

    def _check_divergence(self, value: float, first: float) -> None:
        if not math.isfinite(value) or not all(bool(torch.isfinite(p).all()) for p in self.parameters()):
            raise NonFiniteError(f"non-finite batch NLL or parameters ({value})")
        if value > first + self.divergence_margin * max(1.0, abs(first)):
            raise DivergenceError(f"batch NLL grew from {first:.4g} to {value:.4g} (margin "
                                  f"{self.divergence_margin:g} x max(1, |first|))")

    def _pc_target(self, x: Tensor, y: Tensor) -> Tensor:
        """The output clamp of a PC step: ``y`` itself, or ``out - dNLL/dout`` when heteroscedastic."""
        if not self.heteroscedastic:
            return y
        with torch.enable_grad():
            out = self.net(x).detach().requires_grad_(True)
            mu, log_pi = self._heads(out)
            nll = (0.5 * (y - mu).square() * log_pi.exp() - 0.5 * log_pi).sum()
            (grad,) = torch.autograd.grad(nll, out)
        return (out - grad).detach()

    def _nll(self, out: Tensor, y: Tensor) -> Tensor:
        """Batch mean of the output energy (normalised units), summed over members and entries."""
        mu, log_pi = self._heads(out)
        return (0.5 * (y - mu).square() * log_pi.exp() - 0.5 * log_pi).sum((1, 2)).mean()

    def predict(self, obs: Tensor, actions: Tensor) -> Prediction:
        """Every member's next-state mean and aleatoric variance.

        ``obs`` is ``(B, obs_dim)`` (all members see it) or ``(B, members, obs_dim)`` (member
        ``k`` sees slice ``k``); ``actions`` is ``(B, action_dim)`` or ``(B, members, action_dim)``.
        Returns tensors of shape ``(B, members, obs_dim)``.
        """
        self._check(obs, actions)
        if obs.ndim == 2:
            obs = obs.unsqueeze(1).expand(-1, self.members, -1)
        if actions.ndim == 2:
            actions = actions.unsqueeze(1).expand(-1, self.members, -1)
        if obs.ndim != 3 or obs.shape[1] != self.members or actions.shape[:2] != obs.shape[:2]:
            raise ShapeError("obs", f"expected obs (B, {self.members}, {self.obs_dim}) and matching actions, "
                             f"got {tuple(obs.shape)} and {tuple(actions.shape)}")
        mu, log_pi = self._heads(self.net(self.input_norm(torch.cat((obs, actions), -1))))
        mean = obs + self.target_norm.inverse(mu)
        var = (-log_pi).exp() * self.target_norm.std.square()
        return Prediction(mean, var.expand_as(mean))

    def step(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """One planning step: member means ``(B, members, obs_dim)`` and information gain ``(B,)``.

        The information gain about the model is approximated from the disagreement of the members,
        ``1/2 sum_d log(1 + Var_k[mean_kd] / E_k[var_kd])`` (Gaussian mixture vs. its components).
        """
        pred = self.predict(obs, actions)
        disagreement = pred.mean.var(1, unbiased=False) if self.members > 1 else torch.zeros_like(pred.mean[:, 0])
        gain = 0.5 * torch.log1p(disagreement / pred.var.mean(1)).sum(-1)
        return pred.mean, gain

    @torch.no_grad()
    def planning_dynamics(self, with_gain: bool = True) -> EnsembleRollout:
        """A fast :meth:`step` for planners, valid until the next :meth:`fit`.

        The normalisers are folded into the first and last layers' weights and the members run as
        one ``baddbmm`` per layer; with ``with_gain=False`` the information gain is returned as
        zeros without being computed. Same numbers as :meth:`step` up to rounding. The result
        also rolls a whole horizon out at once (:meth:`EnsembleRollout.rollout`, optionally compiled).
        """
        linears = [m for m in self.net.module if isinstance(m, EnsembleLinear)]
        weights = [m.weight.detach().clone() for m in linears]
        biases = [m.bias.detach().clone() for m in linears]
        s_in, m_in = self.input_norm.std, self.input_norm.mean
        biases[0] = biases[0] - torch.einsum("i,kio->ko", m_in / s_in, weights[0])
        weights[0] = weights[0] / s_in[None, :, None]
        s_out, m_out = self.target_norm.std, self.target_norm.mean
        d = self.obs_dim
        weights[-1][..., :d] = weights[-1][..., :d] * s_out
        biases[-1][..., :d] = biases[-1][..., :d] * s_out + m_out
        var = None
        if self.precision is not None:
            var = ((-self.precision.raw).exp() * s_out.square()).mean(0)
        return EnsembleRollout(weights, biases, var, s_out.square(), max_log_precision=self.max_log_precision,
                               with_gain=with_gain)
