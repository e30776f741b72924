"""PC updates against autograd: "exact" and "fpa" equal backprop; "il" aligns with it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from models import ResidualBlock, TorchLSTMCell, UnrolledLSTM, cnn, mlp
from pcctrl import PCNetwork, Precision
from pcctrl.core.diagnostics import bp_alignment

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}

Case = tuple[Callable[[], nn.Module], Callable[[torch.dtype], Tensor], bool]
CASES: dict[str, Case] = {
    "mlp-tanh": (lambda: mlp(nn.Tanh), lambda d: torch.randn(16, 6, dtype=d), False),
    "mlp-relu": (lambda: mlp(nn.ReLU), lambda d: torch.randn(16, 6, dtype=d), False),
    "cnn": (cnn, lambda d: torch.randn(8, 1, 8, 8, dtype=d), False),
    "residual": (ResidualBlock, lambda d: torch.randn(16, 5, dtype=d), True),
    "lstm-unrolled": (UnrolledLSTM, lambda d: torch.randn(8, 5, 3, dtype=d), True),
    "lstm-cell-module": (TorchLSTMCell, lambda d: torch.randn(8, 5, 3, dtype=d), True),
}


def _network(case: str, dtype: torch.dtype, algorithm: str, fused: bool = True) -> tuple[PCNetwork, Tensor]:
    make, data, traced = CASES[case]
    torch.manual_seed(0)
    module = make().to(dtype)
    kwargs = {"algorithm": algorithm, "fused": fused}
    net = PCNetwork.from_module(module, **kwargs) if traced else PCNetwork(module, **kwargs)  # type: ignore[arg-type]
    return net, data(dtype)


def _target(loss: str, dtype: torch.dtype, batch: int) -> Tensor:
    if loss == "mse":
        return torch.randn(batch, 4, dtype=dtype)
    return torch.randint(0, 4, (batch,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("algorithm", ["exact", "fpa"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
def test_update_equals_backprop(case: str, algorithm: str, loss: str, dtype: torch.dtype, fused: bool) -> None:
    net, x = _network(case, dtype, algorithm, fused)
    y = _target(loss, dtype, x.shape[0])
    alignment = bp_alignment(net, x, y, loss=loss)
    # The fused path takes the Sequential chains; traced graphs (residual, LSTM) always run eager.
    assert net.has_fused_path == (fused and not CASES[case][2])
    assert len(alignment) == len(list(net.parameters()))
    for name, result in alignment.items():
        assert result.relative_error <= TOLERANCE[dtype], (name, result)


def test_fpa_needs_depth_steps() -> None:
    """Fewer relaxation steps than the depth leave the first layers without their error."""
    net, x = _network("mlp-tanh", torch.float64, "fpa")
    net.T = net.graph(x).depth - 2
    alignment = bp_alignment(net, x, torch.randn(16, 4, dtype=torch.float64))
    assert alignment["module.0.weight"].relative_error > 0.5
    assert alignment["module.4.weight"].relative_error < 1e-10


def test_one_hot_targets_match_class_labels() -> None:
    net, x = _network("mlp-relu", torch.float64, "exact")
    labels = torch.randint(0, 4, (16,))
    by_label = net.pc_gradients(x, labels, loss="ce")
    by_one_hot = net.pc_gradients(x, nn.functional.one_hot(labels, 4).double(), loss="ce")
    for name in by_label:
        torch.testing.assert_close(by_label[name], by_one_hot[name])


def test_inference_learning_aligns_with_weak_output_precision() -> None:
    """IL at equilibrium approximates backprop when the output error is weakly weighted.

    With a low output precision the hidden nodes move little, every error stays a small
    multiple of backprop's gradient, and the update points the same way.
    """
    torch.manual_seed(1)
    module = mlp(nn.Tanh, (8, 16, 16, 4)).double()
    x = torch.randn(32, 8, dtype=torch.float64)
    y = torch.randn(32, 4, dtype=torch.float64)
    net = PCNetwork(module, algorithm="il", T=100, x_lr=0.1, precisions={"x5": Precision.scalar(0.01)})
    alignment = bp_alignment(net, x, y)
    assert min(a.cosine for a in alignment.values()) > 0.99
    strong = PCNetwork(module, algorithm="il", T=100, x_lr=0.1)
    assert min(a.cosine for a in bp_alignment(strong, x, y).values()) < 0.9


def test_inference_learning_differs_from_backprop_with_few_steps() -> None:
    """With one tiny relaxation step IL's hidden errors are near zero, so it cannot match BP."""
    torch.manual_seed(1)
    module = mlp(nn.Tanh, (8, 16, 16, 4)).double()
    x = torch.randn(32, 8, dtype=torch.float64)
    net = PCNetwork(module, algorithm="il", T=1, x_lr=0.01)
    alignment = bp_alignment(net, x, torch.randn(32, 4, dtype=torch.float64))
    assert alignment["module.0.weight"].relative_error > 0.9


def test_gradients_do_not_touch_parameters_or_grad() -> None:
    net, x = _network("residual", torch.float64, "exact")
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    bp_alignment(net, x, torch.randn(16, 4, dtype=torch.float64))
    for name, param in net.named_parameters():
        assert torch.equal(param, before[name])
        assert param.grad is None
