"""pcctrl's one checkpoint file format: tensors in safetensors, settings in JSON, a content hash.

A checkpoint holds a *payload*: a tree of dicts, lists, tuples, ``None``, bools, ints, floats,
strings, ``torch.dtype``\\ s, numpy arrays and torch tensors. :func:`write_checkpoint` splits it
into the arrays (stored as safetensors tensors) and a JSON skeleton that refers to them by name.
The skeleton, a ``kind`` string, the format version and a SHA-256 over everything are kept in
the safetensors header's metadata. Reading it back parses JSON and raw tensor bytes only:
there is no pickle anywhere, so a file cannot run code however it was crafted.

Every way a file can be wrong (missing, empty, truncated, random bytes, an old pickle, another
program's safetensors file, a checkpoint of another kind, a newer format, bytes changed after
writing) raises :class:`~pcctrl.errors.CheckpointError` naming the file and the problem. The hash
detects corruption and edits; it is not a signature (whoever can write the file can recompute it),
and it need not be: a file that passes it can still only hold data.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import safetensors.torch
import torch

from .errors import CheckpointError

FORMAT_NAME = "pcctrl-checkpoint"
FORMAT_VERSION = 1
FIRST_SAFE_RELEASE = "0.2.0"
"""The first pcctrl release that writes this format; older files must be re-saved with it or later."""

_HEADER_LIMIT = 100_000_000  # safetensors' own bound on the JSON header
_PICKLE_HINT = (f"an old-format pcctrl checkpoint (a pickle, which can run code when read, so pcctrl "
                f"no longer reads it); re-save it with pcctrl >= {FIRST_SAFE_RELEASE}: if you trust the file, "
                "unpickle it yourself and pass the object to the matching save function")
_DTYPES = {name: getattr(torch, name) for name in (
    "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
    "complex64", "complex128")}

Source = str | os.PathLike | IO[bytes]


def _name(target: Source) -> str:
    if isinstance(target, (str, os.PathLike)):
        return os.fspath(target)
    return str(getattr(target, "name", "<stream>"))


# ---- payload tree <-> (JSON skeleton, tensors) -----------------------------------------------

class _Encoder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.tensors: dict[str, torch.Tensor] = {}

    def _array(self, tensor: torch.Tensor, tag: str, where: str) -> dict[str, str]:
        if tensor.dtype not in _DTYPES.values():
            raise CheckpointError(self.path, f"cannot store {where}: dtype {tensor.dtype} is not supported")
        name = f"t{len(self.tensors)}"
        self.tensors[name] = torch.empty(tensor.shape, dtype=tensor.dtype).copy_(tensor.detach())
        return {tag: name}

    def encode(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
            return int(value)
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, (float, np.floating)):
            value = float(value)
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, torch.Tensor):
            return self._array(value, "__tensor__", where)
        if isinstance(value, np.ndarray):
            if value.dtype == object or value.dtype.kind not in "biufc":
                raise CheckpointError(self.path, f"cannot store {where}: numpy dtype {value.dtype} is not supported")
            return self._array(torch.from_numpy(np.ascontiguousarray(value)), "__ndarray__", where)
        if isinstance(value, torch.dtype):
            return {"__dtype__": str(value).removeprefix("torch.")}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: self.encode(v, f"{where}.{k}") for k, v in value.items()}
            return {"__dict__": [[self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                                 for k, v in value.items()]}
        raise CheckpointError(self.path, f"cannot store {where}: a {type(value).__name__} is not data "
                                         "(a checkpoint holds no code or arbitrary objects)")


def _decode(node: Any, tensors: Mapping[str, torch.Tensor], device: torch.device | str | None) -> Any:
    if isinstance(node, list):
        return [_decode(v, tensors, device) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (tag, inner), = node.items()
        if tag == "__tensor__":
            tensor = tensors[inner]
            return tensor if device is None else tensor.to(device)
        if tag == "__ndarray__":
            return tensors[inner].numpy()
        if tag == "__float__":
            return float(inner)
        if tag == "__dtype__":
            return _DTYPES[inner]
        if tag == "__tuple__":
            return tuple(_decode(v, tensors, device) for v in inner)
        if tag == "__dict__":
            return {_hashable(_decode(k, tensors, device)): _decode(v, tensors, device) for k, v in inner}
    return {k: _decode(v, tensors, device) for k, v in node.items()}


def _hashable(key: Any) -> Any:
    hash(key)
    return key


def _digest(kind: str, version: int, settings: str, tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for part in (FORMAT_NAME, str(version), kind, settings):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        flat = torch.empty(t.numel(), dtype=t.dtype).copy_(t.reshape(-1))  # stride 1, whatever t's strides
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ---- writing ---------------------------------------------------------------------------------

def write_checkpoint(target: Source, kind: str, payload: Any) -> None:
    """Write ``payload`` (see the module docstring) as a checkpoint of ``kind`` to a path or binary stream.

    A path is written atomically (a temporary file in the same folder, fsync, rename): a crash
    never leaves half a checkpoint. Raises :class:`~pcctrl.errors.CheckpointError` (nothing
    written) if the payload holds something that is not data.
    """
    name = _name(target)
    encoder = _Encoder(name)
    skeleton = encoder.encode(payload, "payload")
    settings = json.dumps(skeleton, allow_nan=False, separators=(",", ":"))
    metadata = {"pcctrl.format": FORMAT_NAME, "pcctrl.version": str(FORMAT_VERSION), "pcctrl.kind": kind,
                "pcctrl.settings": settings,
                "pcctrl.sha256": _digest(kind, FORMAT_VERSION, settings, encoder.tensors)}
    data = safetensors.torch.save(encoder.tensors, metadata=metadata)
    if not isinstance(target, (str, os.PathLike)):
        target.write(data)
        return
    atomic_write_bytes(Path(target), data)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary file and a rename: readers never see half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# ---- reading ---------------------------------------------------------------------------------

def read_bytes(source: Source) -> tuple[str, bytes]:
    """The file's name and whole content; a missing or unreadable file is a CheckpointError."""
    name = _name(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            return name, Path(source).read_bytes()
        except FileNotFoundError:
            raise CheckpointError(name, "no such file") from None
        except OSError as exc:
            raise CheckpointError(name, f"cannot be read ({exc.strerror or exc})") from None
    data = source.read()
    if not isinstance(data, bytes):
        raise CheckpointError(name, "is not a binary stream")
    return name, data


def is_legacy_pickle(data: bytes) -> bool:
    """Whether ``data`` starts like a pickle of protocol 2 or higher (what pcctrl < 0.2 wrote)."""
    return len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5


def is_torch_zip(data: bytes) -> bool:
    """Whether ``data`` is a zip archive (``torch.save``'s format)."""
    return data[:4] == b"PK\x03\x04"


def read_checkpoint(source: Source, kind: str | Iterable[str], device: torch.device | str | None = None,
                    data: bytes | None = None) -> tuple[str, Any]:
    """``(kind, payload)`` of a :func:`write_checkpoint` file whose kind is ``kind`` (or one of them).

    Tensors land on ``device`` (default CPU); arrays stored from numpy come back as numpy arrays.
    ``data`` passes the file's bytes when the caller has read them already. Raises
    :class:`~pcctrl.errors.CheckpointError` for any file that is not exactly such a checkpoint.
    """
    kinds = {kind} if isinstance(kind, str) else set(kind)
    name, data = (_name(source), data) if data is not None else read_bytes(source)
    meta = _metadata(name, data)
    found = meta.get("pcctrl.kind", "")
    if found not in kinds:
        raise CheckpointError(name, f"is a {found!r} checkpoint, expected {' or '.join(map(repr, sorted(kinds)))}")
    try:
        tensors = safetensors.torch.load(data)
    except Exception as exc:  # safetensors raises its own error type for every kind of damage
        raise CheckpointError(name, f"is truncated or corrupt (tensor data: {exc})") from None
    settings = meta.get("pcctrl.settings", "")
    if _digest(found, FORMAT_VERSION, settings, tensors) != meta.get("pcctrl.sha256"):
        raise CheckpointError(name, "content hash mismatch: the file was changed or damaged after it was written")
    try:
        return found, _decode(json.loads(settings), tensors, device)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise CheckpointError(name, f"has corrupt settings ({exc})") from None


def _metadata(name: str, data: bytes) -> dict[str, str]:
    if not data:
        raise CheckpointError(name, "is empty (0 bytes)")
    if is_legacy_pickle(data):
        raise CheckpointError(name, f"is {_PICKLE_HINT}")
    if is_torch_zip(data):
        raise CheckpointError(name, f"is a torch.save archive, not a pcctrl checkpoint (pcctrl < {FIRST_SAFE_RELEASE} "
                                    f"wrote those; re-save it with pcctrl >= {FIRST_SAFE_RELEASE})")
    if len(data) < 8:
        raise CheckpointError(name, f"is not a pcctrl checkpoint ({len(data)} bytes, too short for a header)")
    (size,) = struct.unpack("<Q", data[:8])
    head = data[8:8 + min(size, 64)].lstrip()
    if size > _HEADER_LIMIT or not head.startswith(b"{"):
        raise CheckpointError(name, "is not a pcctrl checkpoint (no safetensors header)")
    if 8 + size > len(data):
        raise CheckpointError(name, f"is truncated (the header needs {8 + size} bytes, the file has {len(data)})")
    try:
        header = json.loads(data[8:8 + size])
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise ValueError("metadata is not an object of strings")
    except (ValueError, AttributeError, RecursionError) as exc:
        raise CheckpointError(name, f"has a corrupt header ({exc})") from None
    if meta.get("pcctrl.format") != FORMAT_NAME:
        raise CheckpointError(name, "is a safetensors file but not a pcctrl checkpoint (no pcctrl metadata)")
    version = meta.get("pcctrl.version")
    if version != str(FORMAT_VERSION):
        newer = version is not None and version.isdigit() and int(version) > FORMAT_VERSION
        advice = "upgrade pcctrl" if newer else f"re-save it with pcctrl >= {FIRST_SAFE_RELEASE}"
        raise CheckpointError(name, f"has checkpoint format {version!r}; this pcctrl reads format {FORMAT_VERSION} "
                                    f"({advice})")
    return meta


def to_bytes(kind: str, payload: Any) -> bytes:
    """The checkpoint :func:`write_checkpoint` would write, as bytes (for tests and in-memory use)."""
    stream = io.BytesIO()
    write_checkpoint(stream, kind, payload)
    return stream.getvalue()


__all__ = ["FIRST_SAFE_RELEASE", "FORMAT_VERSION", "is_legacy_pickle", "is_torch_zip", "read_bytes",
           "read_checkpoint", "to_bytes", "write_checkpoint"]
