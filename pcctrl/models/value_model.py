"""``ValueModel``: a state value ``V(s)`` learned by the PC core from TD targets on transitions."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..core import PCNetwork
from ..errors import InvalidArgumentError, ShapeError
from .mlp import silu_mlp
from .normalizer import Normalizer

StepValue = Callable[[Tensor, Tensor, Tensor], Tensor]


class ValueModel(nn.Module):
    """An MLP ``V(s)`` on normalised states, trained by ``PCNetwork.train_step`` on TD(0) targets.

    :meth:`fit` runs fitted value iteration: ``rounds`` times, the targets
    ``r + discount * (1 - terminated) * V_old(s')`` are frozen with the current model and the
    network takes ``steps_per_round`` PC learning steps towards them. ``V`` estimates the
    discounted return of the policy that generated the transitions (the agent's own).

    ``V`` is clipped to the returns the seen rewards allow (:attr:`low`, :attr:`high`): a return
    is a convex mix of a non-terminal reward held forever, ``r / (1 - discount)``, and a terminal
    reward, so it lies between the extremes of those two. Without the clip an MLP extrapolates
    above any return it could be trained on where it has no data, and a planner adding it
    beyond the horizon prefers plans that leave the data over plans that reach the goal.
    """

    def __init__(self, obs_dim: int, hidden: tuple[int, ...] = (64, 64), *, algorithm: str = "exact",
                 lr: float = 1e-3, batch_size: int = 256, discount: float = 0.95, seed: int = 0) -> None:
        super().__init__()
        if obs_dim < 1 or not hidden or any(h < 1 for h in hidden):
            raise InvalidArgumentError("hidden", "obs_dim and every hidden width must be positive")
        if not 0 < discount < 1:
            raise InvalidArgumentError("discount", f"must be in (0, 1), got {discount}")
        self.obs_dim, self.batch_size, self.discount = obs_dim, batch_size, float(discount)
        self._generator = torch.Generator().manual_seed(seed)
        sizes = (obs_dim, *hidden, 1)
        self.net = PCNetwork(silu_mlp(sizes, seed), algorithm=algorithm)
        self.input_norm = Normalizer(obs_dim)
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("low", torch.full((), -torch.inf))
        self.register_buffer("high", torch.full((), torch.inf))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)

    def fit(self, obs: Tensor, rewards: Tensor, next_obs: Tensor, terminated: Tensor, *, rounds: int = 4,
            steps_per_round: int = 50) -> list[float]:
        """Fitted value iteration on transitions; returns the batch MSE (normalised) per step."""
        obs, next_obs = obs.float(), next_obs.float()
        rewards, terminated = rewards.reshape(-1).float(), terminated.reshape(-1).float()
        n = obs.shape[0]
        if obs.shape != (n, self.obs_dim) or next_obs.shape != obs.shape or rewards.shape != (n,) \
                or terminated.shape != (n,) or n < 1:
            raise ShapeError("obs", f"expected n >= 1 transitions with obs (n, {self.obs_dim}), got "
                                    f"{tuple(obs.shape)}, {tuple(next_obs.shape)}, {tuple(rewards.shape)}")
        if not bool(torch.isfinite(rewards).all()):
            raise InvalidArgumentError("rewards", "must be finite")
        if not bool(self.fitted):
            # Fixed at the first fit: the output is in units of the return scale r / (1 - discount).
            self.input_norm.fit(torch.cat((obs, next_obs)))
            self.scale.copy_((rewards.abs().mean() / (1 - self.discount)).clamp_min(1e-6))
            self.fitted.fill_(True)
        self._widen_bounds(rewards, terminated.bool())
        x = self.input_norm(obs)
        losses = []
        for _ in range(rounds):
            with torch.no_grad():
                target = (rewards + self.discount * (1 - terminated) * self(next_obs)) / self.scale
            for _ in range(steps_per_round):
                idx = torch.randint(n, (min(self.batch_size, n),), generator=self._generator)
                y = target[idx, None]
                self.net.train_step(x[idx], y, self.optimizer)
                with torch.no_grad():
                    losses.append(float((self.net(x[idx]) - y).square().mean()))
        return losses

    def _widen_bounds(self, rewards: Tensor, terminated: Tensor) -> None:
        """Grow ``[low, high]`` to every return the rewards seen so far allow."""
        ends = [rewards[~terminated] / (1 - self.discount), rewards[terminated]]
        seen = torch.cat([e for e in ends if e.numel()])
        first = not bool(torch.isfinite(self.high))
        self.low.copy_(seen.min() if first else torch.minimum(self.low, seen.min()))
        self.high.copy_(seen.max() if first else torch.maximum(self.high, seen.max()))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object, **kwargs: object) -> None:
        for name, unbounded in (("low", -torch.inf), ("high", torch.inf)):
            # Files written before the clip existed: load them unclipped, as they were fitted.
            state_dict.setdefault(prefix + name, torch.full((), unbounded))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, obs: Tensor) -> Tensor:
        """``V(obs)`` within ``[low, high]``, shape ``obs.shape[:-1]``."""
        x = self.input_norm(obs.float())
        lead = x.shape[:-1]
        value = self.net(x.reshape(-1, self.obs_dim)) * self.scale
        return value.clamp(self.low, self.high).reshape(lead)
