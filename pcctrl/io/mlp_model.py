"""``MLPStateSpaceModel``: a learned (``learn_state_space``) model with closed-form batched Jacobians.

The filter linearises ``f`` and ``g`` at every step; autograd does that with one reverse pass
per output entry (hundreds of µs each). For the tanh MLPs of :mod:`pcctrl.models.learned` the
Jacobian is a short product of weight matrices and ``1 - tanh^2`` factors, computed here in
the same forward pass. Belongs beside ``learned.py`` (see docs/robots.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..models import MLPObservation, MLPTransition, StateSpaceModel


def _features_jacobian(s: Tensor, angle_dims: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """``phi(s)`` (angles as cos, sin) and ``d phi / d s``, shape ``(B, features, n)``."""
    batch, n = s.shape
    if not angle_dims:
        return s, torch.eye(n, dtype=s.dtype, device=s.device).expand(batch, n, n)
    parts, rows = [], []
    eye = torch.eye(n, dtype=s.dtype, device=s.device)
    for i in range(n):
        col = s[:, i:i + 1]
        if i in angle_dims:
            parts.extend((torch.cos(col), torch.sin(col)))
            rows.extend((-torch.sin(col) * eye[i], torch.cos(col) * eye[i]))
        else:
            parts.append(col)
            rows.append(eye[i].expand(batch, n))
    return torch.cat(parts, dim=-1), torch.stack(rows, dim=1)


def _sequential_jacobian(layers: nn.Sequential, x: Tensor) -> tuple[Tensor, Tensor]:
    """Output and input Jacobian ``(B, out, in)`` of a Sequential of ``Linear`` and ``Tanh`` layers."""
    jac = None
    for layer in layers:
        if isinstance(layer, nn.Linear):
            x = layer(x)
            w = layer.weight
            jac = w.expand(x.shape[0], *w.shape) if jac is None else w @ jac
        elif isinstance(layer, nn.Tanh):
            x = torch.tanh(x)
            jac = (1.0 - x * x).unsqueeze(-1) * jac
        else:
            raise TypeError(f"no closed-form Jacobian for {type(layer).__name__}")
    return x, jac


def _supported(module: nn.Module) -> bool:
    layers = getattr(getattr(module, "net", None), "module", None)
    return isinstance(layers, nn.Sequential) and all(isinstance(m, (nn.Linear, nn.Tanh)) for m in layers)


class MLPStateSpaceModel(StateSpaceModel):
    """A :class:`StateSpaceModel` on :class:`MLPTransition` / :class:`MLPObservation` with analytic Jacobians.

    Same ``f``, ``g``, ``Q``, ``R`` and ``state_dict`` keys as the model ``learn_state_space``
    returns; only :meth:`linearize_transition` and :meth:`linearize_observation` differ (exact,
    batched, no autograd). Networks other than Linear/Tanh stacks fall back to autograd.
    """

    @classmethod
    def wrap(cls, model: StateSpaceModel) -> MLPStateSpaceModel:
        """The same learned model (shared modules and noise), with the fast Jacobians."""
        if not (isinstance(model.f, MLPTransition) and isinstance(model.g, MLPObservation)):
            raise TypeError("wrap needs a model from learn_state_space (MLPTransition, MLPObservation)")
        out = cls(model.f, model.g, state_dim=model.state_dim, obs_dim=model.obs_dim, action_dim=model.action_dim,
                  process_cov=model.process_cov().detach(), obs_cov=model.obs_cov().detach(), dtype=model.dtype)
        out.load_state_dict(model.state_dict())
        if hasattr(model, "training_energy"):
            out.training_energy = model.training_energy
        return out

    def linearize_transition(self, s: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        """``(f(s, a), d f / d s)`` in closed form."""
        f = self.f
        if not _supported(f):
            return super().linearize_transition(s, a)
        phi, dphi = _features_jacobian(s, f.angle_dims)
        z, jac = _sequential_jacobian(f.net.module, f.scaled_in(torch.cat((phi, a), dim=-1)))
        jac = (f.out_std.unsqueeze(-1) * jac / f.in_std)[..., :phi.shape[-1]]
        eye = torch.eye(s.shape[-1], dtype=s.dtype, device=s.device)
        return s + f.unscale_out(z), eye + jac @ dphi

    def linearize_observation(self, s: Tensor) -> tuple[Tensor, Tensor]:
        """``(g(s), d g / d s)`` in closed form."""
        g = self.g
        if not _supported(g):
            return super().linearize_observation(s)
        phi, dphi = _features_jacobian(s, g.angle_dims)
        z, jac = _sequential_jacobian(g.net.module, g.scaled_in(phi))
        return g.unscale_out(z), (g.out_std.unsqueeze(-1) * jac / g.in_std) @ dphi
