"""Bad input to every memory raises a clear pcctrl.errors exception and leaves the memory unchanged."""

from __future__ import annotations

import copy

import pytest
import torch

from pcctrl.errors import DTypeError, InvalidArgumentError, NonFiniteError, PCError, ShapeError
from pcctrl.memory import AssociativeMemory, HopfieldMemory, PCMemory


def _memories() -> list[AssociativeMemory]:
    return [HopfieldMemory.classical(), HopfieldMemory.modern(), HopfieldMemory.sdm(3.0),
            HopfieldMemory("manhattan", "polynomial", beta=3.0), PCMemory(epochs=2)]


def _snapshot(memory: AssociativeMemory) -> tuple:
    graph = getattr(memory, "graph", None)
    weights = None if graph is None else copy.deepcopy(graph.state_dict())
    return None if len(memory) == 0 else memory.patterns.clone(), weights


def _same(a: tuple, b: tuple) -> bool:
    if (a[0] is None) != (b[0] is None) or (a[0] is not None and not torch.equal(a[0], b[0])):
        return False
    if a[1] is None or b[1] is None:
        return a[1] is b[1]
    return a[1].keys() == b[1].keys() and all(torch.equal(a[1][k], b[1][k]) for k in a[1])


STORED = torch.rand(6, 8, generator=torch.Generator().manual_seed(0))
NAN_ROW = torch.tensor([[float("nan")] * 8])


@pytest.mark.parametrize("memory", _memories(), ids=repr)
def test_recall_before_store(memory: AssociativeMemory) -> None:
    for call in (memory.recall, memory.denoise):
        with pytest.raises(InvalidArgumentError, match="empty: call store"):
            call(STORED[0])
    assert len(memory) == 0 and memory.width is None


@pytest.mark.parametrize("memory", _memories(), ids=repr)
@pytest.mark.parametrize(
    ("cue", "error", "message"),
    [
        (torch.rand(2, 7), ShapeError, "width 8"),
        (torch.rand(2, 3, 8), ShapeError, "expected shape"),
        (torch.rand(0, 8), ShapeError, "empty"),
        (torch.cat([STORED[:1], NAN_ROW]), InvalidArgumentError, r"row\(s\) \[1\] are all NaN"),
        (torch.full((8,), float("inf")), NonFiniteError, "inf"),
        (torch.zeros(2, 8, dtype=torch.complex64), DTypeError, "real numbers"),
        ("not an array", InvalidArgumentError, "cue"),
    ],
)
def test_bad_cue_leaves_the_memory_unchanged(memory: AssociativeMemory, cue: object, error: type, message: str) -> None:
    memory.store(STORED)
    before = _snapshot(memory)
    for call in (memory.recall, memory.denoise):
        with pytest.raises(error, match=message):
            call(cue)
    assert _same(before, _snapshot(memory))


@pytest.mark.parametrize("memory", _memories(), ids=repr)
@pytest.mark.parametrize(
    ("patterns", "error"),
    [
        (torch.rand(0, 8), ShapeError),
        (torch.rand(8), None),  # a single pattern is fine
        (torch.rand(2, 2, 2), ShapeError),
        (torch.cat([STORED[:2], NAN_ROW]), NonFiniteError),
        (torch.tensor([[1.0, float("inf")]]), NonFiniteError),
    ],
)
def test_bad_patterns_leave_the_memory_unchanged(memory: AssociativeMemory, patterns: torch.Tensor,
                                                 error: type | None) -> None:
    memory.store(STORED)
    before = _snapshot(memory)
    if error is None:
        memory.store(patterns)
        assert len(memory) == 1
        return
    with pytest.raises(error):
        memory.store(patterns)
    assert issubclass(error, PCError) and _same(before, _snapshot(memory))


@pytest.mark.parametrize(
    "make",
    [lambda: HopfieldMemory(similarity="cosine"), lambda: HopfieldMemory(separation="relu"),
     lambda: HopfieldMemory(beta=0.0), lambda: HopfieldMemory(beta=float("nan")), lambda: HopfieldMemory(steps=0),
     lambda: HopfieldMemory(output="tanh"),
     lambda: HopfieldMemory(self_connections=False), lambda: HopfieldMemory(dtype=torch.int64),
     lambda: PCMemory(hidden=()), lambda: PCMemory(hidden=(0, 4)), lambda: PCMemory(epochs=0),
     lambda: PCMemory(lr=-1.0), lambda: PCMemory(x_lr=0.0), lambda: PCMemory(seed=1.5)],
)
def test_bad_constructor_arguments(make: object) -> None:
    with pytest.raises(InvalidArgumentError):
        make()  # type: ignore[operator]
