"""Checkpoints: the whole controller (configuration and state, beliefs included) in one safe file.

The file is :mod:`pcctrl.checkpoint_io`'s format (safetensors + JSON, content hash): loading
never unpickles anything, so a checkpoint from anywhere cannot run code. A controller is stored
as a tree of *objects*: each is ``{"__object__": kind, "data": ...}`` where ``data`` comes from the
kind's serializer. Serializers are registered per class with :func:`register_checkpoint_kind`:

- a class that defines ``to_checkpoint(self) -> dict`` and a classmethod
  ``from_checkpoint(cls, data) -> instance`` registers with ``register_checkpoint_kind(kind, cls)``;
- a class whose file pcctrl keeps free of this (e.g. :class:`~pcctrl.estimation.PCFilter`) registers
  outside functions: ``register_checkpoint_kind(kind, cls, to_data, from_data)``.

``to_checkpoint`` may return other registered objects inside its dict (a filter inside a
controller); they are stored as nested objects and arrive in ``from_checkpoint`` already rebuilt.
Saving an object of an unregistered class raises :class:`~pcctrl.errors.CheckpointError`
("not supported yet") before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoint_io import read_checkpoint, write_checkpoint
from ..errors import CheckpointError, InvalidArgumentError

CHECKPOINT_KIND = "pcctrl.runtime.controller"
CHECKPOINT_FORMAT = 2
"""Format 1 was a pickle (pcctrl 0.1); format 2 is :mod:`pcctrl.checkpoint_io`'s."""


@dataclass(frozen=True)
class _Kind:
    name: str
    cls: type
    to_data: Callable[[Any], dict[str, Any]]
    from_data: Callable[[dict[str, Any]], Any]


_BY_NAME: dict[str, _Kind] = {}
_BY_CLASS: dict[type, _Kind] = {}
_BUILTINS_LOADED = False


def register_checkpoint_kind(kind: str, cls: type, to_data: Callable[[Any], dict[str, Any]] | None = None,
                             from_data: Callable[[dict[str, Any]], Any] | None = None) -> None:
    """Make objects of exactly ``cls`` storable in checkpoints under the name ``kind``.

    Without ``to_data``/``from_data`` the class's own ``to_checkpoint`` method and
    ``from_checkpoint`` classmethod are used. Registering the same pair again is a no-op.
    """
    to_data = to_data or getattr(cls, "to_checkpoint", None)
    from_data = from_data or getattr(cls, "from_checkpoint", None)
    if not callable(to_data) or not callable(from_data):
        raise TypeError(f"{cls.__name__} needs to_checkpoint/from_checkpoint, or pass to_data and from_data")
    entry = _Kind(kind, cls, to_data, from_data)
    old = _BY_NAME.get(kind)
    if old is not None and old.cls is not cls:
        raise InvalidArgumentError("kind", f"{kind!r} is already registered for {old.cls.__name__}")
    _BY_NAME[kind] = entry
    _BY_CLASS[cls] = entry


def _builtin_kinds() -> None:
    """Register pcctrl's own kinds (imported here, not at module level: those modules import this one's users)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from ..control.reflex import ReflexController
    from ..estimation.pc_filter import PCFilter
    from ..models.linear_gaussian import LinearGaussianModel
    from ..models.pendulum import PendulumModel
    from .filter_reflex import FilterReflexController
    from .latency import LatencyStats
    from .realtime import RealtimeController
    from .state_codecs import filter_from_data, filter_to_data, stats_from_data, stats_to_data

    register_checkpoint_kind("ReflexController", ReflexController)
    register_checkpoint_kind("FilterReflexController", FilterReflexController)
    register_checkpoint_kind("RealtimeController", RealtimeController)
    register_checkpoint_kind("LinearGaussianModel", LinearGaussianModel)
    register_checkpoint_kind("PendulumModel", PendulumModel)
    register_checkpoint_kind("PCFilter", PCFilter, filter_to_data, filter_from_data)
    register_checkpoint_kind("LatencyStats", LatencyStats, stats_to_data, stats_from_data)


def _unsupported(obj: Any) -> str:
    return (f"{type(obj).__name__} cannot be saved yet: checkpoints hold data only, and this type has no "
            "registered serializer (pcctrl.runtime.checkpoint.register_checkpoint_kind)")


def object_to_tree(obj: Any, path: str | Path = "<checkpoint>") -> dict[str, Any]:
    """``obj`` (a registered object) as a checkpoint tree; nested registered objects become subtrees."""
    _builtin_kinds()
    entry = _BY_CLASS.get(type(obj))
    if entry is None:
        raise CheckpointError(path, _unsupported(obj))
    try:
        data = entry.to_data(obj)
    except CheckpointError:
        raise
    except Exception as exc:  # e.g. a setting that is code (a custom clock): refuse before writing anything
        raise CheckpointError(path, f"cannot save this {entry.name}: {exc}") from exc
    return {"__object__": entry.name, "data": _objects_to_trees(data, path)}


def _objects_to_trees(value: Any, path: str | Path) -> Any:
    if type(value) in _BY_CLASS:
        return object_to_tree(value, path)
    if isinstance(value, Mapping):
        return {k: _objects_to_trees(v, path) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_objects_to_trees(v, path) for v in value)
    return value


def tree_to_object(tree: Any, path: str | Path = "<checkpoint>") -> Any:
    """Rebuild what :func:`object_to_tree` stored; a bad tree is a CheckpointError naming ``path``."""
    _builtin_kinds()
    if not isinstance(tree, Mapping) or set(tree) != {"__object__", "data"}:
        raise CheckpointError(path, "does not describe a stored object")
    entry = _BY_NAME.get(tree["__object__"]) if isinstance(tree["__object__"], str) else None
    if entry is None:
        raise CheckpointError(path, f"stores an object of unknown kind {tree['__object__']!r}")
    data = _trees_to_objects(tree["data"], path)
    if not isinstance(data, dict):
        raise CheckpointError(path, f"stores a {entry.name} without its settings")
    try:
        return entry.from_data(data)
    except CheckpointError:
        raise
    except Exception as exc:  # the constructors validate: any refusal means the file describes no valid object
        raise CheckpointError(path, f"describes an invalid {entry.name} ({type(exc).__name__}: {exc})") from None


def _trees_to_objects(value: Any, path: str | Path) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {"__object__", "data"}:
            return tree_to_object(value, path)
        return {k: _trees_to_objects(v, path) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_trees_to_objects(v, path) for v in value)
    return value


def save_checkpoint(controller: Any, path: str | Path) -> Path:
    """Write ``controller`` (settings, models and state, beliefs included) so a new process can resume it.

    The write is atomic. Raises :class:`~pcctrl.errors.CheckpointError` (nothing written) for a
    controller type without a serializer (e.g. ``FilterPlannerController``: not supported yet).
    """
    path = Path(path)
    tree = object_to_tree(controller, path)
    with torch.no_grad():
        write_checkpoint(path, CHECKPOINT_KIND, {"format": CHECKPOINT_FORMAT, "controller": tree})
    return path


def load_checkpoint(path: str | Path) -> Any:
    """Read a :func:`save_checkpoint` file and return the controller, bit for bit as it was saved.

    Safe for files of any origin (nothing is unpickled). Raises
    :class:`~pcctrl.errors.CheckpointError` naming the file for a missing, empty, truncated,
    corrupt, tampered, foreign or old-format (pickle) file.
    """
    _, payload = read_checkpoint(path, CHECKPOINT_KIND)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(path, f"is not a runtime checkpoint of format {CHECKPOINT_FORMAT}")
    return tree_to_object(payload.get("controller"), path)
