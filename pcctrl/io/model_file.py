"""Model files of ``pcctrl fit``: tensors via ``torch.save`` + JSON settings, loaded with ``weights_only=True``.

No pickled Python objects: the file is a dict of tensors and one JSON string, so loading
it never runs code. The model is rebuilt from the settings and its ``state_dict`` restored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core import PCNetwork
from ..errors import CheckpointError, InvalidArgumentError
from ..models import LinearGaussianModel, MLPObservation, MLPTransition, StateSpaceModel
from .mlp_model import MLPStateSpaceModel

MODEL_FORMAT = "pcctrl.io.model/1"


@dataclass
class FittedModel:
    """A model with what the filter needs beside it: initial belief, grid step, the bag topics it reads."""

    model: StateSpaceModel
    initial_mean: np.ndarray
    initial_cov: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)


def _mlp_network(in_dim: int, hidden: int, out_dim: int, algorithm: str, T: int | None,
                 x_lr: float | None) -> PCNetwork:
    # The architecture of pcctrl.models.learned.learn_state_space (two tanh hidden layers).
    layers = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                           nn.Linear(hidden, out_dim))
    return PCNetwork(layers, algorithm=algorithm, T=T, x_lr=x_lr)


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


def save_model(fitted: FittedModel, path: str | Path) -> Path:
    """Write ``fitted`` to ``path`` atomically (a crash never leaves half a file)."""
    model = fitted.model
    settings = {**fitted.settings, **_architecture(model), "format": MODEL_FORMAT,
                "state_dim": model.state_dim, "obs_dim": model.obs_dim, "action_dim": model.action_dim,
                "dtype": str(model.dtype).replace("torch.", "")}
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tensors["initial_mean"] = torch.as_tensor(np.asarray(fitted.initial_mean, dtype=np.float64))
    tensors["initial_cov"] = torch.as_tensor(np.asarray(fitted.initial_cov, dtype=np.float64))
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": MODEL_FORMAT, "settings": json.dumps(settings), "tensors": tensors}, tmp)
    tmp.replace(path)
    return path


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
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle/zip/runtime errors for foreign or damaged files
        raise CheckpointError(path, f"not a readable model file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise CheckpointError(path, f"not a pcctrl model file (format {MODEL_FORMAT})")
    try:
        settings = json.loads(payload["settings"])
        tensors = payload["tensors"]
        model = _rebuild(settings, tensors)
        mean, cov = tensors["initial_mean"].numpy(), tensors["initial_cov"].numpy()
    except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(path, f"damaged model file ({type(exc).__name__}: {exc})") from exc
    return FittedModel(model, mean.copy(), cov.copy(), settings)
