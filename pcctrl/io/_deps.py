"""Optional dependencies of :mod:`pcctrl.io` (the ``[ros]`` extra), imported only when used."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

_PACKAGES = {"rosbags": "rosbags", "mcap": "mcap", "zenoh": "eclipse-zenoh"}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise an ``ImportError`` telling how to install the ``[ros]`` extra."""
    try:
        return import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise ImportError(f"pcctrl.io needs the optional package {_PACKAGES.get(top, top)!r} ({exc}); "
                          "install it with: pip install 'pcctrl[ros]'") from exc
