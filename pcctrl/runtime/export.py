"""``export(controller, path)``: TorchScript or ONNX graphs of a controller step, and a runner for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..control.reflex import ReflexController
from ..errors import InvalidArgumentError
from .filter_reflex import FilterReflexController
from .input_policy import sanitize_observation
from .protocol import Deadline
from .torch_step import FilterReflexStep, ReflexStep

_ORDER = {"reflex": ("y", "mu", "action", "prev"),
          "filter_reflex": ("obs", "mean", "cov", "mu", "action", "prev", "predict")}
_OUTPUTS = {"reflex": ("action_out", "mu_out", "prev_out"),
            "filter_reflex": ("action_out", "mean_out", "cov_out", "mu_out", "prev_out")}


def _rho(reflex: ReflexController) -> list[float]:
    """The beliefs a reset starts from: the goal prior's equilibrium ``(goal, 0, ...)``."""
    return np.concatenate([reflex.goal, np.zeros((reflex.order - 1) * reflex.dim)]).tolist()


def _module(controller: Any, dtype: torch.dtype) -> tuple[str, torch.nn.Module, dict[str, Any]]:
    if isinstance(controller, ReflexController):
        meta = {"obs_size": controller.obs_size, "initial_action": controller.initial_action.tolist(),
                "rho": _rho(controller), "sensed_orders_size": controller.obs_size,
                "state_size": controller.order * controller.dim}
        return "reflex", ReflexStep(controller, dtype), meta
    if isinstance(controller, FilterReflexController):
        reflex = controller.reflex
        meta = {"obs_size": controller.obs_size, "initial_action": reflex.initial_action.tolist(),
                "rho": _rho(reflex),
                "sensed_orders_size": reflex.obs_size, "state_size": reflex.order * reflex.dim,
                "initial_mean": controller.initial_mean.tolist(), "initial_cov": controller.initial_cov.tolist(),
                "sensed": controller.sensed.tolist()}
        return "filter_reflex", FilterReflexStep(controller.filter, reflex, controller.sensed, dtype), meta
    raise InvalidArgumentError("controller", f"cannot export {type(controller).__name__}: only ReflexController "
                                             "and FilterReflexController (linear model) have a fixed-size step")


def _example(kind: str, meta: dict[str, Any], dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    size, m = meta["state_size"], len(meta["initial_action"])
    if kind == "reflex":
        return (torch.zeros(meta["obs_size"], dtype=dtype), torch.zeros(size, dtype=dtype),
                torch.zeros(m, dtype=dtype), torch.zeros(size, dtype=dtype))
    n = len(meta["initial_mean"])
    return (torch.zeros(meta["obs_size"], dtype=dtype), torch.zeros(n, dtype=dtype), torch.eye(n, dtype=dtype),
            torch.zeros(size, dtype=dtype), torch.zeros(m, dtype=dtype), torch.zeros(size, dtype=dtype),
            torch.ones(1, dtype=dtype))


def export(controller: Any, path: str | Path, format: str | None = None, dtype: torch.dtype = torch.float64) -> Path:
    """Write the controller's step as TorchScript (``.pt``) or ONNX (``.onnx``), plus ``<path>.json``.

    The graph is the pure step ``(reading, state) -> (action, state)`` with the controller's
    fixed number of relaxation iterations (no deadline); :class:`ExportedController` runs it with
    the same reset and state handling as the Python controller. ``format`` defaults from the suffix.
    """
    path = Path(path)
    fmt = format or {".pt": "torchscript", ".onnx": "onnx"}.get(path.suffix)
    if fmt not in ("torchscript", "onnx"):
        raise InvalidArgumentError("format", f"must be 'torchscript' or 'onnx' (or a .pt/.onnx path), got {fmt!r}")
    kind, module, meta = _module(controller, dtype)
    module.eval()
    example = _example(kind, meta, dtype)
    with torch.no_grad():
        if fmt == "torchscript":
            torch.jit.save(torch.jit.trace(module, example, check_trace=False), str(path))
        else:
            torch.onnx.export(module, example, str(path), input_names=list(_ORDER[kind]),
                              output_names=list(_OUTPUTS[kind]), dynamo=False)
    meta.update(kind=kind, format=fmt, dtype=str(dtype).replace("torch.", ""))
    Path(str(path) + ".json").write_text(json.dumps(meta))
    return path


class ExportedController:
    """Runs an exported step (TorchScript via ``torch.jit.load``, ONNX via onnxruntime) as a Controller."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.meta = json.loads(Path(str(path) + ".json").read_text())
        self.kind, self.format = self.meta["kind"], self.meta["format"]
        self.np_dtype = np.float64 if self.meta["dtype"] == "float64" else np.float32
        if self.format == "torchscript":
            self._module = torch.jit.load(str(path))
            self._session = None
        else:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self._input_names = [i.name for i in self._session.get_inputs()]
        self.obs_size = self.meta["obs_size"]
        self.state: dict[str, np.ndarray] = {}

    def _run(self, **inputs: np.ndarray) -> list[np.ndarray]:
        args = [np.asarray(inputs[name], dtype=self.np_dtype) for name in _ORDER[self.kind]]
        if self._session is not None:
            feed = {name: arg for name, arg in zip(_ORDER[self.kind], args) if name in self._input_names}
            return self._session.run(None, feed)
        with torch.no_grad():
            return [t.numpy() for t in self._module(*(torch.from_numpy(a) for a in args))]

    def reset(self, obs: Any) -> None:
        """Same reset as the Python controller (belief from the first reading, reflex at its prior)."""
        y = sanitize_observation(obs, self.obs_size)
        size, s = self.meta["state_size"], self.meta["sensed_orders_size"]
        prev = np.zeros(size)
        action = np.asarray(self.meta["initial_action"])
        state = {"mu": np.asarray(self.meta["rho"]), "action": action}
        if self.kind == "reflex":
            prev[:s] = y
        else:
            out = self._run(obs=y, mean=np.asarray(self.meta["initial_mean"]), cov=np.asarray(self.meta["initial_cov"]),
                            mu=state["mu"], action=action, prev=np.zeros(size), predict=np.zeros(1))
            state.update(mean=out[1], cov=out[2])
            prev[:s] = out[1][np.asarray(self.meta["sensed"])]
        state["prev"] = prev
        self.state = {k: np.asarray(v, dtype=self.np_dtype) for k, v in state.items()}

    def step(self, obs: Any, deadline: Deadline | None = None) -> np.ndarray:
        """One exported step (fixed iterations: ``deadline`` is accepted and ignored)."""
        y = sanitize_observation(obs, self.obs_size)
        st = self.state
        if self.kind == "reflex":
            a, mu, prev = self._run(y=y, **st)
            self.state = {"mu": mu, "action": a, "prev": prev}
        else:
            a, mean, cov, mu, prev = self._run(obs=y, predict=np.ones(1), **st)
            self.state = {"mean": mean, "cov": cov, "mu": mu, "action": a, "prev": prev}
        return np.asarray(a, dtype=np.float64).copy()
