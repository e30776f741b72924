"""Checkpoints: the whole controller (configuration and state, beliefs included) in one file."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

CHECKPOINT_FORMAT = 1


def save_checkpoint(controller: Any, path: str | Path) -> Path:
    """Write ``controller`` (pickled, with its ``get_state()`` snapshot) so a new process can resume it."""
    path = Path(path)
    state = controller.get_state() if callable(getattr(controller, "get_state", None)) else None
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump({"format": CHECKPOINT_FORMAT, "controller": controller, "state": state}, fh,
                    protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)  # atomic: a crash mid-write never leaves a half checkpoint
    return path


def load_checkpoint(path: str | Path) -> Any:
    """Read a :func:`save_checkpoint` file (trusted files only: it is a pickle) and return the controller."""
    with open(path, "rb") as fh:
        payload = pickle.load(fh)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a pcctrl runtime checkpoint (format {CHECKPOINT_FORMAT})")
    # The pickle restores every array bit for bit; payload["state"] is a readable copy for tools,
    # not re-applied (set_state re-validates, e.g. re-symmetrises the covariance, which may move last bits).
    return payload["controller"]
