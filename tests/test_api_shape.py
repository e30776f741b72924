"""The public API's shape: settings by keyword, small classes where the agent and control code live."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest

MODULES = ["pcctrl", "pcctrl.core", "pcctrl.control", "pcctrl.estimation", "pcctrl.models", "pcctrl.runtime",
           "pcctrl.agents", "pcctrl.envs", "pcctrl.errors", "pcctrl.memory", "pcctrl.io"]
MAX_POSITIONAL = 6
MAX_CLASS_LINES = 210
ROOT = Path(__file__).resolve().parents[1]


def _positional(func: Any) -> int:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 0
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds and p.name not in ("self", "cls") for p in params)


def _is_record(cls: type) -> bool:
    """Dataclasses and named tuples are records: their fields are their API."""
    return dataclasses.is_dataclass(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))


def _public_callables() -> list[tuple[str, Any]]:
    found: dict[int, tuple[str, Any]] = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj):
                if _is_record(obj) or issubclass(obj, BaseException):
                    continue
                found.setdefault(id(obj.__init__), (f"{module_name}.{name}.__init__", obj.__init__))
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if isinstance(member, (classmethod, staticmethod)):
                        member = member.__func__
                    if inspect.isfunction(member):
                        found.setdefault(id(member), (f"{module_name}.{name}.{attr}", member))
            elif inspect.isfunction(obj):
                found.setdefault(id(obj), (f"{module_name}.{name}", obj))
    return sorted(found.values(), key=lambda item: item[0])


def test_public_functions_take_at_most_six_positional_parameters() -> None:
    offenders = {name: n for name, func in _public_callables() if (n := _positional(func)) > MAX_POSITIONAL}
    assert not offenders, f"pass these settings by keyword (add `*`): {offenders}"


@pytest.mark.parametrize("folder", ["agents", "pcctrl/control"])
def test_classes_in_agents_and_control_stay_small(folder: str) -> None:
    long = {}
    for path in sorted((ROOT / folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                long[f"{path.name}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert not long, f"split these classes into parts: {long}"


def test_the_check_sees_a_violation() -> None:
    def wide(a: int, b: int, c: int, d: int, e: int, f: int, g: int) -> None:
        """Seven positional parameters."""

    assert _positional(wide) == 7 > MAX_POSITIONAL
