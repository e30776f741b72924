"""Model files of ``pcctrl fit``: pcctrl's checkpoint format (safetensors tensors + JSON settings + hash).

No pickled Python objects (:mod:`pcctrl.checkpoint_io`): loading a file never runs code. The
model is rebuilt from the settings and its ``state_dict`` restored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint_io import read_checkpoint, write_checkpoint
from ..core import PCNetwork
from ..models.mlp import tanh_mlp
from ..errors import CheckpointError, InvalidArgumentError
from ..models import LinearGaussianModel, MLPObservation, MLPTransition, StateSpaceModel
from .mlp_model import MLPStateSpaceModel

MODEL_KIND = "pcctrl.io.model"
MODEL_VERSION = 1


@dataclass
class FittedModel:
    """A model with what the filter needs beside it: initial belief, grid step, the bag topics it reads."""

    model: StateSpaceModel
    initial_mean: np.ndarray
    initial_cov: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)


def _mlp_network(in_dim: int, hidden: int, out_dim: int, algorithm: str, T: int | None,
                 x_lr: float | None) -> PCNetwork:
    return PCNetwork(tanh_mlp(in_dim, hidden, out_dim), algorithm=algorithm, T=T, x_lr=x_lr)


def _architecture(model: StateSpaceModel) -> dict[str, Any]:
    if isinstance(model, LinearGaussianModel):
        return {"kind": "linear"}
    f, g = model.f, model.g
    if not (isinstance(f, MLPTransition) and isinstance(g, MLPObservation)):
        raise InvalidArgumentError("model", "only LinearGaussianModel and learn_state_space models can be saved "
                                            f"to a model file, got {type(f).__name__} / {type(g).__name__}")
    first = f.net.module[0]
    return {"kind": "mlp", "hidden": first.out_features, "algorithm": f.net.algorithm, "T": f.net.T,
            "x_lr": f.net.x_lr, "angle_dims": list(f.angle_dims)}


def _finite(value: Any) -> Any:
    """``value`` with NaN/inf floats as ``None`` (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def save_model(fitted: FittedModel, path: str | Path) -> Path:
    """Write ``fitted`` to ``path`` atomically (a crash never leaves half a file)."""
    model = fitted.model
    settings = {**_finite(fitted.settings), **_architecture(model), "version": MODEL_VERSION,
                "state_dim": model.state_dim, "obs_dim": model.obs_dim, "action_dim": model.action_dim,
                "dtype": str(model.dtype).replace("torch.", "")}
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tensors["initial_mean"] = torch.as_tensor(np.asarray(fitted.initial_mean, dtype=np.float64))
    tensors["initial_cov"] = torch.as_tensor(np.asarray(fitted.initial_cov, dtype=np.float64))
    write_checkpoint(Path(path), MODEL_KIND, {"settings": settings, "tensors": tensors})
    return Path(path)


def _rebuild(settings: dict[str, Any], tensors: dict[str, torch.Tensor]) -> StateSpaceModel:
    dtype = getattr(torch, settings["dtype"])
    n, p, m = settings["state_dim"], settings["obs_dim"], settings["action_dim"]
    q, r = tensors["process_noise.cov"], tensors["obs_noise.cov"]
    if settings["kind"] == "linear":
        model: StateSpaceModel = LinearGaussianModel(tensors["A"], tensors["B"] if m else None, tensors["C"], q, r,
                                                     dtype=dtype)
    elif settings["kind"] == "mlp":
        angles = tuple(settings["angle_dims"])
        args = (settings["hidden"], settings["algorithm"], settings["T"], settings["x_lr"])
        with torch.random.fork_rng(devices=[]):  # construction draws initial weights; keep the caller's RNG
            f = MLPTransition(_mlp_network(n + len(angles) + m, args[0], n, *args[1:]), n, m, angles).to(dtype)
            g = MLPObservation(_mlp_network(n + len(angles), args[0], p, *args[1:]), n, p, angles).to(dtype)
        f.requires_grad_(False)
        g.requires_grad_(False)
        model = MLPStateSpaceModel(f, g, state_dim=n, obs_dim=p, action_dim=m, process_cov=q, obs_cov=r, dtype=dtype)
    else:
        raise ValueError(f"unknown model kind {settings['kind']!r}")
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("initial_")}, strict=True)
    return model


def load_model(path: str | Path) -> FittedModel:
    """Read a :func:`save_model` file; raises :class:`~pcctrl.errors.CheckpointError` if it is not one."""
    path = Path(path)
    _, payload = read_checkpoint(path, MODEL_KIND)
    try:
        settings, tensors = payload["settings"], payload["tensors"]
        if settings.get("version") != MODEL_VERSION:
            raise ValueError(f"model file version {settings.get('version')!r}, this pcctrl reads {MODEL_VERSION}")
        model = _rebuild(settings, tensors)
        mean, cov = tensors["initial_mean"].numpy(), tensors["initial_cov"].numpy()
    except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(path, f"damaged model file ({type(exc).__name__}: {exc})") from exc
    return FittedModel(model, mean.copy(), cov.copy(), settings)
