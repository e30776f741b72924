"""``GraphedCall``: a function of fixed-shape CUDA tensors, captured once as a CUDA graph and replayed."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

logger = logging.getLogger(__name__)


@dataclass
class _Capture:
    key: tuple[tuple[torch.Size, torch.dtype, torch.device], ...]
    graph: torch.cuda.CUDAGraph
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]


class GraphedCall:
    """Runs ``fn(*inputs) -> tuple of tensors`` as one CUDA graph replay instead of its kernels one by one.

    The first call with a new set of input shapes runs ``fn`` eagerly (a warm-up on a side stream;
    its result is returned), then captures it; later calls with those shapes copy the inputs into
    the captured ones, replay, and return copies of the outputs. The ``max_shapes`` most recently
    used shape sets keep their graphs (a planner asked for changing subsets of its environments).
    ``fn`` must be a pure function of its tensor inputs and of tensors that stay alive and in place
    between calls (weights); anything else it reads (Python numbers, replaced tensors) is frozen at
    capture: pass it as ``settings`` (a tuple; objects compare by identity and are kept alive), and
    a call whose settings differ from the last call's captures again. It must draw no random
    numbers (pass noise in as an input). If a capture fails (``fn`` synchronises with the host,
    say), the failure is logged once, and every later call runs ``fn`` eagerly: the numbers are the
    same either way.
    """

    def __init__(self, fn: Callable[..., tuple[Tensor, ...]], max_shapes: int = 8) -> None:
        self.fn = fn
        self.max_shapes = int(max_shapes)
        self.captures = 0
        self.failure: str | None = None
        self._captures: OrderedDict[tuple, _Capture] = OrderedDict()
        self._settings: tuple = ()

    def invalidate(self) -> None:
        """Drop every captured graph: each shape captures again on its next call."""
        self._captures.clear()

    @property
    def active(self) -> bool:
        """Whether some shape replays a graph (``False`` before the first capture or after a failed one)."""
        return bool(self._captures)

    def __call__(self, *inputs: Tensor, settings: tuple = ()) -> tuple[Tensor, ...]:
        if self.failure is not None:
            return self.fn(*inputs)
        if settings != self._settings:
            self.invalidate()
            self._settings = settings
        key = tuple((t.shape, t.dtype, t.device) for t in inputs)
        cap = self._captures.get(key)
        if cap is None:
            out = self._warm_up(inputs)
            cap = self._record(key, inputs)
            if cap is not None:
                self._captures[key] = cap
                while len(self._captures) > self.max_shapes:
                    self._captures.popitem(last=False)
            return out
        self._captures.move_to_end(key)
        for static, fresh in zip(cap.inputs, inputs):
            static.copy_(fresh)
        cap.graph.replay()
        return tuple(t.clone() for t in cap.outputs)

    def _warm_up(self, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        # Per torch's CUDA-graph notes: lazy initialisation (cuBLAS handles, workspaces) happens outside the capture.
        main = torch.cuda.current_stream(inputs[0].device)
        side = torch.cuda.Stream(inputs[0].device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            out = self.fn(*inputs)
        main.wait_stream(side)
        return out

    def _record(self, key: tuple, inputs: tuple[Tensor, ...]) -> _Capture | None:
        static = tuple(t.clone() for t in inputs)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                outputs = tuple(self.fn(*static))
        except RuntimeError as err:  # an operation that cannot be captured
            self.failure = str(err).splitlines()[0] if str(err) else type(err).__name__
            logger.warning("CUDA-graph capture failed, running eagerly from now on: %s", self.failure)
            return None
        self.captures += 1
        return _Capture(key, graph, static, outputs)
