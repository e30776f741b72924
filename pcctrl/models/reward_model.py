"""``RewardModel``: a reward ``r(o, a, o')`` learned by the PC core, for envs without a closed form."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core import PCNetwork
from ..errors import InvalidArgumentError, ShapeError
from .mlp import silu_mlp
from .normalizer import Normalizer


class RewardModel(nn.Module):
    """An MLP on normalised ``[o, a, o']`` trained by ``PCNetwork.train_step`` (``algorithm``)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...] = (64, 64), *,
                 algorithm: str = "exact", lr: float = 1e-3, batch_size: int = 256, seed: int = 0) -> None:
        super().__init__()
        if obs_dim < 1 or action_dim < 1 or not hidden or any(h < 1 for h in hidden):
            raise InvalidArgumentError("hidden", "obs_dim, action_dim and every hidden width must be positive")
        self.obs_dim, self.action_dim, self.batch_size = obs_dim, action_dim, batch_size
        self._generator = torch.Generator().manual_seed(seed)
        sizes = (2 * obs_dim + action_dim, *hidden, 1)
        self.net = PCNetwork(silu_mlp(sizes, seed), algorithm=algorithm)
        self.input_norm = Normalizer(sizes[0])
        self.target_norm = Normalizer(1)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)

    def fit(self, obs: Tensor, actions: Tensor, next_obs: Tensor, rewards: Tensor, steps: int) -> list[float]:
        """``steps`` PC learning steps on random minibatches; returns the batch MSE per step."""
        x = torch.cat((obs, actions, next_obs), -1).float()
        y = rewards.reshape(-1, 1).float()
        if x.shape != (y.shape[0], self.input_norm.size):
            raise ShapeError("obs", f"expected n transitions of obs {self.obs_dim}, action {self.action_dim}, got "
                                    f"{tuple(x.shape)}")
        self.input_norm.fit(x)
        self.target_norm.fit(y)
        xn, yn = self.input_norm(x), self.target_norm(y)
        losses = []
        for _ in range(steps):
            idx = torch.randint(x.shape[0], (min(self.batch_size, x.shape[0]),), generator=self._generator)
            self.net.train_step(xn[idx], yn[idx], self.optimizer)
            with torch.no_grad():
                losses.append(float((self.net(xn[idx]) - yn[idx]).square().mean()))
        return losses

    def forward(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """Predicted reward, shape ``obs.shape[:-1]``."""
        x = self.input_norm(torch.cat((obs, action, next_obs), -1))
        lead = x.shape[:-1]
        return self.target_norm.inverse(self.net(x.reshape(-1, x.shape[-1]))).reshape(lead)
