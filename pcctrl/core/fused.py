"""The fused path: PC inference and learning on a chain of layers whose local derivatives are known.

For a ``PCNetwork`` over an ``nn.Sequential`` whose entries are ``Linear``, ``Conv1d``, ``Conv2d``,
``Tanh``, ``Sigmoid``, ``ReLU``, ``LeakyReLU``, ``Flatten``, ``Identity``, ``MaxPool2d`` or
``AvgPool2d`` (or nested ``nn.Sequential`` groups of them: one value node per group), every
Jacobian-transpose product and weight gradient has a closed form. This module computes the
errors, the feedback ``J^T eps`` and the weight updates directly: the same algorithms and the
same skipping of exactly-zero errors as ``inference.relax`` and ``learning``'s exact sweep, but
without autograd graphs, with the feedback subtraction fused into the matmul, in-place node
updates, and image-shaped values in channels-last memory format (where convolution and pooling
run several times faster on CPU). Steady-state steps write their predictions, errors, feedback
and node values into tensors the chain keeps between calls (one set per shape), so a relaxation
allocates almost nothing: on CPU a fresh multi-megabyte tensor costs more in page faults than
the pass that fills it. A chain is therefore not to be stepped from two threads at once.
Results agree with the autograd path to rounding; the exactness tests run on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .energy_graph import EnergyGraph, State
from .inference import Settings, check_trace

Grads = list[Tensor | None]


def _pair(value: int | Sequence[int]) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


def _cl(value: Tensor) -> Tensor:
    """Channels-last layout for a 4-D value (a no-op when it is already): every image-shaped
    tensor of the chain keeps one layout, so elementwise kernels never mix strides."""
    return value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 else value


_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
_ONEDNN_MIN_DIM = 64  # rows or inner size below this: oneDNN's per-call overhead (about 20 us) outweighs its kernel


_ONEDNN_BUILT = torch.backends.mkldnn.is_available()


def _onednn(a: Tensor, b: Tensor) -> bool:
    """Whether ``a @ b`` goes through oneDNN: large float32 products on CPU, outside autograd.

    oneDNN's float32 GEMM ran 2x MKL's on an AMD EPYC (Zen 4) core; rounding differs only in the
    order of summation (tests/core/test_fused.py holds the result to the autograd path's accuracy).
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[0] < _ONEDNN_MIN_DIM or a.shape[1] < _ONEDNN_MIN_DIM:
        return False
    return (_ONEDNN_LINEAR is not None and a.dtype == torch.float32 and b.dtype == torch.float32
            and a.device.type == "cpu" and _ONEDNN_BUILT and torch.backends.mkldnn.enabled
            and not torch.is_grad_enabled())


def _flat(value: Tensor) -> Tensor:
    """``value`` as one vector in its memory order (a view when it is dense, channels-last included)."""
    if value.is_contiguous():
        return value.view(-1)
    if value.dim() == 4 and value.is_contiguous(memory_format=torch.channels_last):
        return value.permute(0, 2, 3, 1).reshape(-1)
    return value.reshape(-1)


def _narrow(x: Tensor, weight: Tensor) -> bool:
    """Whether ``x @ weight.T`` has few outputs (below ``_ONEDNN_MIN_DIM``) for many float32 CPU rows."""
    return (weight.shape[0] < _ONEDNN_MIN_DIM and x.shape[0] >= _ONEDNN_MIN_DIM and x.dtype == torch.float32
            and x.device.type == "cpu" and not torch.is_grad_enabled())


def _mm(a: Tensor, b: Tensor, out: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
    """``a @ b (+ bias)``, into ``out`` where the kernel can write into it (use the returned tensor)."""
    if _onednn(a, b):
        # oneDNN allocates its result; copying it into ``out`` would cost more than the allocation.
        return _ONEDNN_LINEAR(a.contiguous(), b.t(), bias, "none", [], "")
    if bias is None:
        return torch.mm(a, b, out=out)
    return torch.addmm(bias, a, b, out=out)


def _reused(store: dict[Any, Tensor], key: Any, like: Tensor, shape: Sequence[int] | None = None,
            dtype: torch.dtype | None = None) -> Tensor:
    """``store[key]``, (re)made when it does not match ``like``'s shape, dtype, device and layout.

    Steady-state steps write into the same memory instead of allocating, so the process never
    returns these pages to the OS and faults them in again (on CPU, a fresh 12 MB tensor costs
    more in page faults than the elementwise pass that fills it).
    """
    shape = tuple(like.shape if shape is None else shape)
    dtype = like.dtype if dtype is None else dtype
    four_d = len(shape) == 4  # only a 4-D buffer has a layout to match; the others are made contiguous
    cl = four_d and like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if cl else torch.contiguous_format
    held = store.get(key)
    if (held is None or held.shape != shape or held.dtype != dtype or held.device != like.device
            or (four_d and not held.is_contiguous(memory_format=fmt))):
        held = torch.empty(shape, dtype=dtype, device=like.device, memory_format=fmt)
        store[key] = held
    return held


class _Op:
    """One layer: its forward pass and its closed-form backward pass."""

    channels_last = False

    def __init__(self, layer: nn.Module) -> None:
        self.layer = layer
        self.buffers: dict[str, Tensor] = {}

    def buffer(self, slot: str | None, like: Tensor, shape: Sequence[int] | None = None,
               dtype: torch.dtype | None = None) -> Tensor | None:
        """This op's persistent output tensor for ``slot`` (``None``: no reuse, allocate as usual)."""
        return None if slot is None else _reused(self.buffers, slot, like, shape, dtype)

    @property
    def params(self) -> list[nn.Parameter]:
        return []

    def forward(self, x: Tensor, slot: str | None = None) -> tuple[Tensor, Any]:
        """The output and what ``backward`` needs; with a ``slot``, written into this op's buffer."""
        raise NotImplementedError

    def backward(self, ctx: Any, g: Tensor, need_input: bool, need_params: bool,
                 slot: str | None = None) -> tuple[Tensor | None, Grads]:
        """``J^T g`` (if ``need_input``) and ``(dy/dtheta)^T g`` per parameter (if ``need_params``)."""
        raise NotImplementedError

    def minus_input_grad(self, ctx: Any, g: Tensor, base: Tensor | None) -> Tensor:
        """``base - J^T g`` (``-J^T g`` without a base), written into ``base``: the caller owns it."""
        gin = self.backward(ctx, g, True, False, "feedback" if base is not None else None)[0]
        assert gin is not None
        return torch.neg(gin) if base is None else base.sub_(gin)


class _Linear(_Op):
    @property
    def params(self) -> list[nn.Parameter]:
        return [p for p in (self.layer.weight, self.layer.bias) if p is not None]

    def forward(self, x: Tensor, slot: str | None = None) -> tuple[Tensor, Any]:
        weight, bias = self.layer.weight, self.layer.bias
        if x.dim() == 2 and _narrow(x, weight):
            # A few outputs from many rows: MKL's (out, in) x (in, batch) product beats both
            # oneDNN and the (batch, in) x (in, out) one (23 against 35 and 87 us at 256 x 256 -> 10).
            out = self.buffer(slot, x, (weight.shape[0], x.shape[0]))
            xt = x.t()
            y = (torch.mm(weight, xt, out=out) if bias is None else torch.addmm(bias[:, None], weight, xt, out=out)).t()
        elif x.dim() == 2:
            out = self.buffer(slot, x, (x.shape[0], weight.shape[0]))
            y = _mm(x, weight.t(), out, bias)
        else:
            y = F.linear(x, weight, bias)
        return y, x

    def backward(self, ctx: Tensor, g: Tensor, need_input: bool, need_params: bool,
                 slot: str | None = None) -> tuple[Tensor | None, Grads]:
        g2 = g.reshape(-1, g.shape[-1])
        gin = None
        if need_input:
            out = self.buffer(slot, g2, (g2.shape[0], self.layer.weight.shape[1])) if ctx.dim() == 2 else None
            gin = _mm(g2, self.layer.weight, out).reshape(ctx.shape)
        grads: Grads = []
        if need_params:
            grads.append(_mm(g2.t(), ctx.reshape(-1, ctx.shape[-1])))
            if self.layer.bias is not None:
                grads.append(g2.sum(0))
        return gin, grads

    def minus_input_grad(self, ctx: Tensor, g: Tensor, base: Tensor | None) -> Tensor:
        if base is not None and g.dim() == 2 and base.dim() == 2:
            if _onednn(g, self.layer.weight):
                return base.sub_(_mm(g, self.layer.weight))
            return base.addmm_(g, self.layer.weight, alpha=-1)
        return super().minus_input_grad(ctx, g, base)


class _Conv(_Op):
    def __init__(self, layer: nn.Module, dims: int) -> None:
        super().__init__(layer)
        self.dims = dims
        self.channels_last = dims == 2

    @property
    def params(self) -> list[nn.Parameter]:
        return [p for p in (self.layer.weight, self.layer.bias) if p is not None]

    def forward(self, x: Tensor, slot: str | None = None) -> tuple[Tensor, Any]:
        layer = self.layer
        if self.dims == 1:
            return F.conv1d(x, layer.weight, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups), x
        return _cl(F.conv2d(x, layer.weight, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups)), x

    def backward(self, ctx: Tensor, g: Tensor, need_input: bool, need_params: bool,
                 slot: str | None = None) -> tuple[Tensor | None, Grads]:
        layer = self.layer
        has_bias = layer.bias is not None
        if need_params and self.dims == 2 and ctx.shape[1] == 1:
            # One input channel: oneDNN's weight gradient is ~4x slower in channels-last here.
            gin = self._conv_backward(g, ctx, True, False, has_bias)[0] if need_input else None
            _, gw, gb = self._conv_backward(g.contiguous(), ctx.contiguous(), False, True, has_bias)
        else:
            gin, gw, gb = self._conv_backward(g, ctx, need_input, need_params, has_bias)
        if gin is not None and self.dims == 2:
            gin = _cl(gin)
        grads: Grads = []
        if need_params:
            grads.append(gw)
            if has_bias:
                grads.append(gb)
        return gin, grads

    def _conv_backward(self, g: Tensor, x: Tensor, need_input: bool, need_params: bool,
                       has_bias: bool) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        layer = self.layer
        gin, gw, gb = torch.ops.aten.convolution_backward(
            g, x, layer.weight, [layer.out_channels] if has_bias else None,
            list(layer.stride), list(layer.padding), list(layer.dilation), False, [0] * self.dims,
            layer.groups, [need_input, need_params, need_params and has_bias],
        )
        if not need_params:
            return gin, None, None
        return gin, gw, gb if has_bias else None


_ONE_F32 = torch.ones((), dtype=torch.float32)


def _tanh_via_sigmoid(x: Tensor) -> bool:
    """Whether ``tanh`` of ``x`` is computed as ``2 sigmoid(2x) - 1`` (float32 on CPU)."""
    return x.dtype == torch.float32 and x.device.type == "cpu"


def _tanh_of_doubled(z: Tensor, out: Tensor | None) -> Tensor:
    """``tanh(z / 2) = 2 sigmoid(z) - 1`` (float32 CPU; ``lerp`` towards 1 with weight -1 is ``2s - 1``)."""
    return torch.sigmoid(z, out=out).lerp_(_ONE_F32, -1.0)


def _tanh(x: Tensor, out: Tensor | None) -> Tensor:
    """``tanh(x)``; float32 on CPU as ``2 sigmoid(2x) - 1`` (within 5e-7 of it, and 5x faster there)."""
    if not _tanh_via_sigmoid(x):
        return torch.tanh(x, out=out)
    y = torch.mul(x, 2, out=out)
    return _tanh_of_doubled(y, y)


class _Pointwise(_Op):
    """An activation whose derivative is a function of its output (or input) alone."""

    def forward(self, x: Tensor, slot: str | None = None) -> tuple[Tensor, Any]:
        layer = self.layer
        out = self.buffer(slot, x)
        if isinstance(layer, nn.Tanh):
            y = _tanh(x, out)
        elif isinstance(layer, nn.Sigmoid):
            y = torch.sigmoid(x, out=out)
        elif isinstance(layer, nn.ReLU):
            y = torch.clamp_min(x, 0, out=out)
        else:
            return torch._C._nn.leaky_relu(x, layer.negative_slope, out=out), x
        return y, y

    def backward(self, ctx: Tensor, g: Tensor, need_input: bool, need_params: bool,
                 slot: str | None = None) -> tuple[Tensor | None, Grads]:
        if not need_input:
            return None, []
        layer, aten = self.layer, torch.ops.aten
        if isinstance(layer, nn.Tanh):
            op, extra = aten.tanh_backward, ()
        elif isinstance(layer, nn.Sigmoid):
            op, extra = aten.sigmoid_backward, ()
        elif isinstance(layer, nn.ReLU):
            op, extra = aten.threshold_backward, (0,)
        else:
            op, extra = aten.leaky_relu_backward, (layer.negative_slope, False)
        out = self.buffer(slot, g)
        return (op(g, ctx, *extra) if out is None else op.grad_input(g, ctx, *extra, grad_input=out)), []


class _Reshape(_Op):
    """``Flatten`` and ``Identity``: the value is copied, so no node aliases another."""

    def forward(self, x: Tensor, slot: str | None = None) -> tuple[Tensor, Any]:
        if isinstance(self.layer, nn.Flatten):
            y = x.flatten(self.layer.start_dim, self.layer.end_dim)
        else:
            y = x
        out = self.buffer(slot, y)
        if out is not None:
            return out.copy_(y), x.shape
        return (y.clone() if y.data_ptr() == x.data_ptr() else y), x.shape

    def backward(self, ctx: torch.Size, g: Tensor, need_input: bool, need_params: bool,
                 slot: str | None = None) -> tuple[Tensor | None, Grads]:
        return (_cl(g.reshape(ctx)) if need_input else None), []


class _Pool(_Op):
    channels_last = True

    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        self.kernel = _pair(layer.kernel_size)
        self.stride = _pair(layer.stride if layer.stride is not None else layer.kernel_size)
        self.padding = _pair(layer.padding)
        self.pooled_from: dict[str, tuple[torch.Size, torch.dtype, torch.device]] = {}

    def forward(self, x: Tensor, slot: str | None = None) -> tuple[Tensor, Any]:
        layer = self.layer
        if isinstance(layer, nn.MaxPool2d):
            if slot is not None and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
                return self._max_into(x, slot)
            y, idx = F.max_pool2d(x, self.kernel, self.stride, self.padding, layer.dilation, layer.ceil_mode, True)
            return _cl(y), (x, idx)
        y = F.avg_pool2d(x, self.kernel, self.stride, self.padding, layer.ceil_mode,
                         layer.count_include_pad, layer.divisor_override)
        return _cl(y), (x, None)

    def _max_into(self, x: Tensor, slot: str) -> tuple[Tensor, Any]:
        """Max pooling written into this op's buffers (values and argmax indices, channels-last)."""
        layer = self.layer
        out, idx = self.buffers.get(slot), self.buffers.get(slot + ".idx")
        if out is None or idx is None or self.pooled_from.get(slot) != (x.shape, x.dtype, x.device):
            # First call for this input: pool as usual and keep the results as the buffers.
            y, idx = F.max_pool2d(x, self.kernel, self.stride, self.padding, layer.dilation, layer.ceil_mode, True)
            out, idx = self.buffers[slot], self.buffers[slot + ".idx"] = _cl(y), _cl(idx)
            self.pooled_from[slot] = (x.shape, x.dtype, x.device)
            return out, (x, idx)
        torch.ops.aten.max_pool2d_with_indices.out(x, self.kernel, self.stride, self.padding, _pair(layer.dilation),
                                                   layer.ceil_mode, out=out, indices=idx)
        return out, (x, idx)

    def backward(self, ctx: tuple[Tensor, Tensor | None], g: Tensor, need_input: bool,
                 need_params: bool, slot: str | None = None) -> tuple[Tensor | None, Grads]:
        if not need_input:
            return None, []
        x, idx = ctx
        layer = self.layer
        if idx is not None:
            return _cl(torch.ops.aten.max_pool2d_with_indices_backward(
                g, x, self.kernel, self.stride, self.padding, _pair(layer.dilation), layer.ceil_mode, idx
            )), []
        return _cl(torch.ops.aten.avg_pool2d_backward(
            g, x, self.kernel, self.stride, self.padding, layer.ceil_mode, layer.count_include_pad,
            layer.divisor_override,
        )), []

    def minus_input_grad(self, ctx: tuple[Tensor, Tensor | None], g: Tensor, base: Tensor | None) -> Tensor:
        x, idx = ctx
        layouts = (base, idx, g)
        if idx is None or base is None or not all(t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
                                                  for t in layouts):  # type: ignore[union-attr]
            return super().minus_input_grad(ctx, g, base)
        # Max pooling sends each output's error to its argmax only: scatter it straight into the
        # base (channels-last memory is (N, H*W, C)), with no full-size zero tensor in between.
        n, c = x.shape[:2]
        flat = base.permute(0, 2, 3, 1).reshape(n, -1, c)
        negated = self.buffer("negated", g)
        assert negated is not None
        torch.neg(g, out=negated)
        flat.scatter_add_(1, idx.permute(0, 2, 3, 1).reshape(n, -1, c), negated.permute(0, 2, 3, 1).reshape(n, -1, c))
        return base


def _op(layer: nn.Module) -> _Op | None:
    """The fused op for one layer, or ``None`` if the layer is not one this path knows exactly."""
    if layer._forward_hooks or layer._forward_pre_hooks or layer._backward_hooks:
        return None
    kind = type(layer)
    if kind is nn.Linear:
        return _Linear(layer)
    if kind in (nn.Conv1d, nn.Conv2d):
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            return None
        return _Conv(layer, 2 if kind is nn.Conv2d else 1)
    if kind in (nn.Tanh, nn.Sigmoid, nn.ReLU, nn.LeakyReLU):
        return _Pointwise(layer)
    if kind in (nn.Flatten, nn.Identity):
        return _Reshape(layer)
    if kind in (nn.MaxPool2d, nn.AvgPool2d):
        if kind is nn.MaxPool2d and layer.return_indices:
            return None
        return _Pool(layer)
    return None


_ONEDNN_ACTIVATIONS = {nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ReLU: "relu"}


class _Node:
    """The prediction of one value node: a chain of ops."""

    def __init__(self, ops: list[_Op]) -> None:
        self.ops = ops
        self.params = [p for op in ops for p in op.params]
        # Linear then an activation that oneDNN applies in the product's epilogue (saves a pass).
        self.activation = (_ONEDNN_ACTIVATIONS.get(type(ops[1].layer))
                           if len(ops) > 1 and isinstance(ops[0], _Linear) and isinstance(ops[1], _Pointwise)
                           else None)

    def forward(self, x: Tensor, slot: str | None = None) -> tuple[Tensor, list[Any]]:
        """The prediction from ``x`` and each op's context."""
        ctxs: list[Any] = []
        rest = self.ops
        if self.activation is not None and x.dim() == 2 and _onednn(x, rest[0].layer.weight):
            linear = rest[0].layer
            y = _ONEDNN_LINEAR(x.contiguous(), linear.weight, linear.bias, self.activation, [], "")
            ctxs, x, rest = [x, y], y, rest[2:]
        for op in rest:
            x, ctx = op.forward(x, slot)
            ctxs.append(ctx)
        return x, ctxs

    def backward(self, ctxs: list[Any], g: Tensor, need_input: bool, need_params: bool) -> tuple[Tensor | None, Grads]:
        grads: Grads = []
        for i in range(len(self.ops) - 1, -1, -1):
            op = self.ops[i]
            gin, own = op.backward(ctxs[i], g, need_input or i > 0, need_params)
            grads[:0] = own
            if gin is None:
                break
            g = gin
        return (g if need_input else None), grads

    def minus_input_grad(self, ctxs: list[Any], g: Tensor, base: Tensor | None) -> Tensor:
        """``base - J^T g`` through the whole chain."""
        for i in range(len(self.ops) - 1, 0, -1):
            gin = self.ops[i].backward(ctxs[i], g, True, False, "feedback")[0]
            assert gin is not None
            g = gin
        return self.ops[0].minus_input_grad(ctxs[0], g, base)


def _ops_of(module: nn.Module) -> list[_Op] | None:
    if type(module) is nn.Sequential:
        if module._forward_hooks or module._forward_pre_hooks or len(module) == 0:
            return None
        ops: list[_Op] = []
        for layer in module:
            inner = _ops_of(layer)
            if inner is None:
                return None
            ops.extend(inner)
        return ops
    op = _op(module)
    return None if op is None else [op]


class _ImplicitFirst:
    """The first hidden node ``x1`` carried implicitly, at one matmul per inference step less.

    ``x1``'s prediction is fixed (its input is clamped), so under gradient descent with step
    ``lr`` its error obeys ``e1 <- (1 - lr) e1 + lr W^T d``, where ``W`` is the weight of the
    Linear that opens node 2 and ``d`` the feedback below that Linear. Hence ``e1 = r W`` with
    ``r <- lerp(r, d, lr)``, node 2's pre-activation is ``a0 + r G`` with ``G = W W^T``, and
    ``|e1|^2 = <r, r G>``: each step costs one ``(B, out) x (out, out)`` matmul where the explicit
    form needs two ``(B, in) x (in, out)`` ones. Exact in exact arithmetic; used only where it
    saves work (``worthwhile``).
    """

    def __init__(self, node: _Node, x1: Tensor, lr: float) -> None:
        linear = node.ops[0]
        self.node, self.lr = node, lr
        self.weight = linear.layer.weight
        self.x1 = x1
        self.a0, _ = linear.forward(x1)
        self.gram = _mm(self.weight, self.weight.t())
        # A tanh after the Linear taken as 2 sigmoid(2a) - 1: a0 and G are kept doubled, so each
        # step's pre-activation arrives doubled and the doubling pass is saved; q is then 2 r G.
        self.doubled = (len(node.ops) > 1 and type(node.ops[1].layer) is nn.Tanh
                        and _tanh_via_sigmoid(self.a0))
        if self.doubled:
            self.a0.mul_(2)  # a fresh tensor of the Linear's
            self.gram = self.gram.mul_(2)
        self.norm_scale = 0.5 if self.doubled else 1.0  # |e1|^2 = norm_scale <r, q>
        # Node 2 = Linear, tanh: the step's product q turns into the prediction and then the
        # feedback in place (three 256x256 buffers fewer per step), so <r, q> is taken first.
        self.in_place = self.doubled and len(node.ops) == 2
        self.r = torch.zeros_like(self.a0)
        self.r_flat = self.r.view(-1)
        self.q = torch.zeros_like(self.a0)

    def _through(self, a: Tensor, slot: str) -> tuple[Tensor, list[Any]]:
        """Node 2's prediction from its (doubled, if ``doubled``) pre-activation; contexts after the Linear."""
        ops = self.node.ops
        ctxs: list[Any] = []
        rest = ops[1:]
        if self.doubled:
            a = _tanh_of_doubled(a, ops[1].buffer(slot, a))
            ctxs.append(a)
            rest = ops[2:]
        for op in rest:
            a, ctx = op.forward(a, slot)
            ctxs.append(ctx)
        return a, ctxs

    def start(self) -> tuple[Tensor, list[Any]]:
        """Node 2's prediction at ``r = 0`` (from ``a0``, no product) with the Linear's true context."""
        mu, ctxs = self._through(self.a0, "ff")
        return mu, [self.x1, *ctxs]

    @staticmethod
    def worthwhile(nodes: list[_Node], x1: Tensor, steps: int) -> bool:
        """Whether node 2 opens with a Linear on a 2-D ``x1`` and the saved matmuls outweigh ``G``."""
        if len(nodes) < 2 or x1.dim() != 2 or not isinstance(nodes[1].ops[0], _Linear):
            return False
        out_f, in_f = nodes[1].ops[0].layer.weight.shape
        batch, moving = x1.shape[0], steps - len(nodes) + 2
        cost = out_f * out_f * in_f + batch * out_f * in_f + moving * batch * out_f * out_f
        return moving > 0 and cost < 2 * moving * batch * in_f * out_f

    def forward(self, norm_out: Tensor) -> tuple[Tensor, list[Any]]:
        """Node 2's prediction from the present ``r``; ``<r, r G>`` (``|e1|^2 / norm_scale``, may round
        slightly below 0) into the 0-d ``norm_out``."""
        self.q = _mm(self.r, self.gram, self.q)
        torch.dot(self.r_flat, self.q.view(-1), out=norm_out)
        if self.in_place:
            mu = _tanh_of_doubled(self.q.add_(self.a0), self.q)
            return mu, [None, mu]
        a = torch.add(self.a0, self.q, out=self.node.ops[0].buffer("implicit", self.a0))
        mu, ctxs = self._through(a, "re")
        return mu, [None, *ctxs]

    def step(self, ctxs: list[Any], signal: Tensor) -> None:
        """One descent step of ``x1``: ``r <- lerp(r, d, lr)`` with ``d`` the feedback into the Linear."""
        ops = self.node.ops
        if self.in_place:  # the prediction (ctxs[1]) is recomputed before it is read again
            signal = torch.ops.aten.tanh_backward.grad_input(signal, ctxs[1], grad_input=ctxs[1])
        else:
            for i in range(len(ops) - 1, 0, -1):
                signal = ops[i].backward(ctxs[i], signal, True, False, "feedback")[0]
        self.r.lerp_(signal, self.lr)

    def settle(self, ctxs: list[Any]) -> tuple[Tensor, Tensor]:
        """``(x1, e1)`` made explicit at the end, with node 2's Linear context filled in."""
        e1 = _mm(self.r, self.weight)
        x1 = self.x1 + e1
        ctxs[0] = x1
        return x1, e1


class FusedChain:
    """PC inference and learning for a chain of value nodes ``x0 -> x1 -> ... -> xL`` (see module doc)."""

    def __init__(self, nodes: list[_Node]) -> None:
        self.nodes = nodes
        self.channels_last = any(op.channels_last for node in nodes for op in node.ops)
        self._buffers: dict[tuple[str, int], Tensor] = {}
        self._weights: dict[tuple[Any, ...], Tensor] = {}

    def _buffer(self, kind: str, level: int, like: Tensor) -> Tensor:
        """The chain's persistent tensor for ``(kind, level)``, shaped and laid out like ``like``."""
        return _reused(self._buffers, (kind, level), like)

    @classmethod
    def of(cls, module: nn.Module) -> "FusedChain | None":
        """The fused chain of an ``nn.Sequential`` (one node per entry), or ``None`` if it has none."""
        if type(module) is not nn.Sequential or module._forward_hooks or module._forward_pre_hooks:
            return None
        nodes = []
        for layer in module:
            ops = _ops_of(layer)
            if ops is None:
                return None
            nodes.append(_Node(ops))
        return cls(nodes) if nodes else None

    def _layout(self, value: Tensor) -> Tensor:
        return _cl(value) if self.channels_last else value

    def _forward(self, x: Tensor, slot: str | None = None, implicit_lr: float | None = None, steps: int = 0,
                 ) -> tuple[list[Tensor], list[Tensor], list[Any], _ImplicitFirst | None]:
        """The feedforward pass; with ``implicit_lr``, ``x1`` carried implicitly where that pays."""
        values, mus, ctxs = [x], [x], [None]
        implicit = None
        for level, node in enumerate(self.nodes, 1):
            if level == 2 and implicit_lr is not None and _ImplicitFirst.worthwhile(self.nodes, values[1], steps):
                implicit = _ImplicitFirst(node, values[1], implicit_lr)
                mu, ctx = implicit.start()
            else:
                mu, ctx = node.forward(values[-1], slot)
            values.append(mu)
            mus.append(mu)
            ctxs.append(ctx)
        return values, mus, ctxs, implicit

    def _weight_grads(self, node: _Node, ctxs: list[Any], signal: Tensor, scale: float,
                      totals: dict[int, Tensor], need_input: bool = False) -> Tensor | None:
        gin, grads = node.backward(ctxs, signal, need_input, True)
        for param, grad in zip(node.params, grads):
            if grad is None:
                continue
            grad = grad.mul_(scale) if grad.is_contiguous() else grad.contiguous().mul_(scale)
            key = id(param)
            totals[key] = totals[key] + grad if key in totals else grad
        return gin

    def _energy_weights(self, like: Tensor, ce: bool, implicit: float | None) -> Tensor:
        """The weight of each column of the energy table (every column holds a squared norm or an energy).

        1/2 for a squared error norm, 1 for a cross-entropy output; ``implicit``: ``x1``'s column
        holds ``|e1|^2 / implicit`` (carried implicitly).
        """
        key = (ce, implicit, like.dtype, like.device)
        if key not in self._weights:
            halves = torch.full((len(self.nodes),), 0.5, dtype=like.dtype, device=like.device)
            if ce:
                halves[-1] = 1.0
            if implicit is not None:
                halves[0] = 0.5 * implicit
            self._weights[key] = halves
        return self._weights[key]

    @staticmethod
    def _output_signal(y: Tensor, mu: Tensor, ce: bool, energy: Tensor) -> Tensor:
        """The output's ``-dE/dmu``; its batch-summed energy (twice the energy for Gaussian) into ``energy``."""
        if ce:
            log_p = torch.log_softmax(mu, dim=-1)
            energy.copy_(-(y * log_p).sum())
            return y - log_p.exp()
        eps = y - mu
        flat = eps.reshape(-1)
        torch.dot(flat, flat, out=energy)
        return eps

    def relax_and_grads(
        self, graph: EnergyGraph, state: State, inputs: str, output: str, settings: Settings,
        params: list[nn.Parameter],
    ) -> tuple[Grads, list[Tensor], int, bool]:
        """``il``/``fpa``: relax the hidden nodes, then the weight update (batch-mean gradient).

        Returns the update per parameter of ``params``, the batch-mean energy per step, the
        number of steps taken and whether ``tol`` stopped it.
        """
        L = len(self.nodes)
        batch = state.batch
        ce = state.kinds[output] == "ce"
        fixed, lr, tol = settings.fixed_predictions, settings.x_lr, settings.tol
        growth = settings.guard.energy_growth if settings.watches_growth else None
        names = [f"x{level}" for level in range(1, L + 1)]
        with torch.no_grad():
            y = self._layout(state.values[output])
            values, mus, ctxs, implicit = self._forward(self._layout(state.values[inputs]), "ff",
                                                        None if fixed else lr, settings.steps)
            values[L] = y
            halves = self._energy_weights(y, ce, None if implicit is None else implicit.norm_scale)
            # Row per step: the hidden errors' squared norms (x1's scaled when implicit), the output energy.
            table = y.new_zeros((settings.steps + 1, L))
            cells = [row.unbind() for row in table.unbind()]  # 0-d views, made once
            filled = 0
            owned = [False] * (L + 1)
            low = L  # nodes low..L may carry a non-zero error; the others sit at their predictions
            moved: int | None = None  # nodes moved..L-1 took a step last time
            signals: dict[int, Tensor] = {}
            previous: float | None = None
            converged = False
            done = 0
            for step in range(settings.steps + 1):
                if moved is not None and not fixed:
                    for level in range(moved + 1, L + 1):
                        if level == 2 and implicit is not None:
                            mus[2], ctxs[2] = implicit.forward(cells[step][0])
                        else:
                            mus[level], ctxs[level] = self.nodes[level - 1].forward(values[level - 1], "re")
                hidden = [i for i in range(low, L) if i > 1 or implicit is None]
                errors = [torch.sub(values[i], mus[i], out=self._buffer("error", i, values[i])) for i in hidden]
                signals = dict(zip(hidden, errors))
                row = cells[step]
                signals[L] = self._output_signal(y, mus[L], ce, row[L - 1])
                for level, error in zip(hidden, errors):
                    flat = _flat(error)
                    torch.dot(flat, flat, out=row[level - 1])
                filled = step + 1
                if tol is not None:
                    current = float(torch.dot(table[step], halves))
                    if previous is not None and abs(previous - current) <= tol * max(abs(previous), 1e-12):
                        converged = True
                        break
                    previous = current
                if step == settings.steps or L == 1:
                    break
                first = max(1, low - 1)
                if implicit is not None and first == 1:
                    implicit.step(ctxs[2], signals[2])
                explicit = max(first, 2) if implicit is not None else first
                steps_of = [
                    self.nodes[level].minus_input_grad(ctxs[level + 1], signals[level + 1], signals.get(level))
                    for level in range(explicit, L)
                ]
                mine = [level for level in range(explicit, L) if owned[level]]
                if mine:
                    torch._foreach_add_([values[i] for i in mine], steps_of[mine[0] - explicit:], alpha=-lr)
                for level, grad in zip(range(explicit, L), steps_of):
                    if not owned[level]:
                        values[level] = torch.add(values[level], grad, alpha=-lr,
                                                  out=self._buffer("value", level, values[level]))
                        owned[level] = True
                moved = first
                low = min(low, first)
                done += 1
            table = table[:filled]
            if implicit is not None:
                table[:, 0].clamp_min_(0)  # <r, r G> can round below zero
            table = table * halves
            check_trace(graph, table, names, growth)
            if implicit is not None and low == 1:
                values[1], signals[1] = implicit.settle(ctxs[2])
            totals: dict[int, Tensor] = {}
            for level, signal in signals.items():
                self._weight_grads(self.nodes[level - 1], ctxs[level], signal, -1.0 / batch, totals)
        trace = list((table.sum(1) / batch).unbind())
        return [totals.get(id(p)) for p in params], trace, done, converged

    def exact_grads(
        self, graph: EnergyGraph, state: State, inputs: str, output: str, params: list[nn.Parameter]
    ) -> tuple[Grads, list[Tensor]]:
        """``exact`` (Z-IL): errors settle one level per step, each level's weights update then."""
        L = len(self.nodes)
        batch = state.batch
        ce = state.kinds[output] == "ce"
        names = [f"x{level}" for level in range(1, L + 1)]
        with torch.no_grad():
            y = self._layout(state.values[output])
            _, mus, ctxs, _ = self._forward(self._layout(state.values[inputs]), "ff")
            zero = y.new_zeros(())
            energy = y.new_zeros(())
            signal = self._output_signal(y, mus[L], ce, energy)
            if not ce:
                energy = 0.5 * energy
            start, end = [zero] * L, [zero] * L
            start[L - 1] = end[L - 1] = energy
            totals: dict[int, Tensor] = {}
            for level in range(L, 0, -1):
                if level < L:
                    flat = signal.reshape(-1)
                    end[level - 1] = 0.5 * torch.dot(flat, flat)
                gin = self._weight_grads(self.nodes[level - 1], ctxs[level], signal, -1.0 / batch, totals,
                                         need_input=level > 1)
                if gin is not None:
                    signal = gin
            check_trace(graph, torch.stack([torch.stack(start), torch.stack(end)]), names)
        trace = [torch.stack(start).sum() / batch, torch.stack(end).sum() / batch]
        return [totals.get(id(p)) for p in params], trace
