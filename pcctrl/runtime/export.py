"""``export(controller, path)``: ``torch.export`` or ONNX graphs of a controller step, and a runner for them."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import warnings
from collections.abc import Iterator
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


_FORMATS = {".pt2": "torch.export", ".pt": "torch.export", ".onnx": "onnx"}


def _quiet_onnx_export(module: torch.nn.Module, example: tuple[torch.Tensor, ...], path: Path, kind: str) -> None:
    """``torch.onnx.export(..., dynamo=True)`` without torch's own progress lines and internal deprecations."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "torchvision is not installed" notices: irrelevant to these graphs
    try:
        with _torch_internal_warnings_silenced(), contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(module, example, str(path), input_names=list(_ORDER[kind]),
                              output_names=list(_OUTPUTS[kind]), dynamo=True, verbose=False, optimize=True)
    except ImportError as exc:
        raise ImportError(f"ONNX export needs the [export] extra (onnx, onnxscript, onnxruntime): {exc}") from exc
    finally:
        logger.setLevel(level)


def _aoti_package(module: torch.nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> None:
    """The ``torch.export`` program compiled ahead of time by AOTInductor (needs a C++ compiler)."""
    if path.suffix != ".pt2":
        raise InvalidArgumentError("path", f"an AOTInductor package must be a .pt2 file, got {path.name!r}")
    program = torch.export.export(module, example)
    with _torch_internal_warnings_silenced():
        from torch._inductor import aoti_compile_and_package

        aoti_compile_and_package(program, package_path=str(path))


@contextlib.contextmanager
def _torch_internal_warnings_silenced() -> Iterator[None]:
    """Deprecations that torch 2.13 raises from its own internals (its pytree use; TorchScript
    decorators in modules that Inductor imports), which no caller can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*torch\\.jit\\.script_method.*deprecated.*",
                                category=DeprecationWarning)
        yield


def _verify(path: Path, module: torch.nn.Module, kind: str, meta: dict[str, Any], dtype: torch.dtype) -> None:
    """Run the written file on random inputs (readings with NaNs) against the torch step it came from."""
    runner = ExportedController(path)
    gen = torch.Generator().manual_seed(0)
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    for trial in range(3):
        inputs = [torch.randn(x.shape, generator=gen, dtype=dtype) for x in _example(kind, meta, dtype)]
        inputs[0][trial % inputs[0].numel()] = float("nan")
        if kind == "filter_reflex":
            n = inputs[1].shape[0]
            inputs[2] = torch.eye(n, dtype=dtype) + 0.1 * inputs[2] @ inputs[2].T
            inputs[6] = torch.full((1,), float(trial % 2), dtype=dtype)
        with torch.no_grad():
            expected = module(*inputs)
        got = runner._run(**{name: x.numpy() for name, x in zip(_ORDER[kind], inputs)})
        for name, want, have in zip(_OUTPUTS[kind], expected, got):
            if not np.allclose(np.asarray(have), want.numpy(), rtol=tol, atol=tol, equal_nan=True):
                raise RuntimeError(f"exported {path.name} disagrees with the torch step on {name}: "
                                   f"max error {np.nanmax(np.abs(np.asarray(have) - want.numpy())):.3g}")


def export(controller: Any, path: str | Path, format: str | None = None, dtype: torch.dtype = torch.float64) -> Path:
    """Write the controller's step as a ``torch.export`` program (``.pt2``; ``.pt`` also accepted) or
    ONNX (``.onnx``, the dynamo exporter), plus ``<path>.json``; then check the file against the step.
    ``format="aoti"`` compiles the ``torch.export`` program ahead of time with AOTInductor into a
    ``.pt2`` package (needs a C++ compiler at export time, ~20-40 s; the fastest to run, CPU).

    The graph is the pure step ``(reading, state) -> (action, state)`` with the controller's
    fixed number of relaxation iterations (no deadline); :class:`ExportedController` runs it with
    the same reset and state handling as the Python controller. ``format`` (``"torch.export"``,
    ``"aoti"`` or ``"onnx"``) defaults from the suffix. TorchScript is no longer written: it is
    deprecated in torch 2.13 and warns on every trace, save and load. Before returning, the written
    file is run on random inputs against the torch step it was made from (ONNX: when onnxruntime
    is installed); a mismatch deletes the file and its ``.json`` and raises ``RuntimeError``.
    """
    path = Path(path)
    fmt = format or _FORMATS.get(path.suffix)
    if fmt == "torchscript":
        raise InvalidArgumentError("format", "TorchScript export was removed (deprecated in torch 2.13); use "
                                             "'torch.export' (.pt2) or 'onnx' (.onnx)")
    if fmt not in ("torch.export", "aoti", "onnx"):
        raise InvalidArgumentError("format", f"must be 'torch.export', 'aoti' or 'onnx' (or a .pt2/.pt/.onnx path), "
                                             f"got {fmt!r}")
    if dtype not in (torch.float32, torch.float64):
        raise InvalidArgumentError("dtype", f"must be torch.float32 or torch.float64, got {dtype}")
    kind, module, meta = _module(controller, dtype)
    module.eval()
    example = _example(kind, meta, dtype)
    with torch.no_grad():
        if fmt == "torch.export":
            buffer = io.BytesIO()  # through a buffer: torch.export.save insists on a .pt2 file name
            torch.export.save(torch.export.export(module, example), buffer)
            path.write_bytes(buffer.getvalue())
        elif fmt == "aoti":
            _aoti_package(module, example, path)
        else:
            _quiet_onnx_export(module, example, path, kind)
    meta.update(kind=kind, format=fmt, dtype=str(dtype).replace("torch.", ""))
    Path(str(path) + ".json").write_text(json.dumps(meta))
    if fmt != "onnx" or importlib.util.find_spec("onnxruntime") is not None:
        try:
            _verify(path, module, kind, meta, dtype)
        except Exception:
            path.unlink(missing_ok=True)
            Path(str(path) + ".json").unlink(missing_ok=True)
            raise
    return path


class ExportedController:
    """Runs an exported step (``torch.export`` program, AOTInductor package, or ONNX via
    onnxruntime) as a Controller.

    ``device`` (default CPU): where the step runs; ``"cuda"`` moves a ``torch.export`` program
    to the GPU and asks onnxruntime for its CUDA provider (an error if it has none); an
    AOTInductor package runs where it was compiled (CPU). Readings, actions and state stay
    numpy on the host, as for every Controller.
    """

    def __init__(self, path: str | Path, device: str | torch.device = "cpu") -> None:
        path = Path(path)
        self.meta = json.loads(Path(str(path) + ".json").read_text())
        self.kind, self.format = self.meta["kind"], self.meta["format"]
        self.np_dtype = np.float64 if self.meta["dtype"] == "float64" else np.float32
        self.device = torch.device(device)
        self._session = self._module = None
        if self.format == "torchscript":
            raise InvalidArgumentError("path", f"{path} is a TorchScript export, which pcctrl no longer runs; "
                                               "re-export it with export(controller, 'step.pt2' or 'step.onnx')")
        if self.format == "torch.export":
            program = torch.export.load(io.BytesIO(path.read_bytes()))
            if self.device.type != "cpu":
                # Rewrites device-bearing ops too (a plain .to() on the module moves only its tensors).
                # Imported by name: torch 2.11 does not load the submodule with torch.export.
                from torch.export.passes import move_to_device_pass

                program = move_to_device_pass(program, self.device)
            self._module = program.module()
        elif self.format == "aoti":
            if self.device.type != "cpu":
                raise InvalidArgumentError("device", "this AOTInductor package was compiled for the CPU")
            with _torch_internal_warnings_silenced():
                from torch._inductor import aoti_load_package

                self._module = aoti_load_package(str(path))
        elif self.format == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            provider = "CUDAExecutionProvider" if self.device.type == "cuda" else "CPUExecutionProvider"
            if provider not in ort.get_available_providers():
                raise InvalidArgumentError("device", f"onnxruntime here has no {provider} "
                                                     f"(available: {ort.get_available_providers()})")
            self._session = ort.InferenceSession(str(path), options, providers=[provider])
            self._input_names = [i.name for i in self._session.get_inputs()]
        else:
            raise InvalidArgumentError("path", f"{path}: unknown export format {self.format!r}")
        self.obs_size = self.meta["obs_size"]
        self.state: dict[str, np.ndarray] = {}

    def _run(self, **inputs: np.ndarray) -> list[np.ndarray]:
        args = [np.asarray(inputs[name], dtype=self.np_dtype) for name in _ORDER[self.kind]]
        if self._session is not None:
            feed = {name: arg for name, arg in zip(_ORDER[self.kind], args) if name in self._input_names}
            return self._session.run(None, feed)
        with torch.no_grad():
            outputs = self._module(*(torch.from_numpy(a).to(self.device) for a in args))
        return [t.cpu().numpy() for t in outputs]

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
