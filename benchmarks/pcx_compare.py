"""pcctrl's PC training step against PCX's (JAX), same MLP, same T, measured in one run.

MLP 784-256-256-10 (tanh), batch 256, squared-error output energy, T inference steps of plain
gradient descent on the nodes then one SGD weight step, in both libraries. Prints the median
step time of each, their ratio (bar: pcctrl/PCX <= 1.0 at T = 1, 8, 20) and torch's backprop step.
PCX needs JAX: run in an environment with both, e.g.
``python -m venv /tmp/pcx && /tmp/pcx/bin/pip install pcx torch==2.13.0 && /tmp/pcx/bin/pip install -e .``
then ``/tmp/pcx/bin/python benchmarks/pcx_compare.py``. One CPU thread for both by default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

THREADS = int(os.environ.get("PCX_COMPARE_THREADS", "1"))
if THREADS == 1:  # must be set before JAX starts its thread pool
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")


def _median_ms(step: Callable[[], None], repeats: int) -> float:
    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def pcx_step(T: int, x_np, y_np) -> Callable[[], None]:
    """A jitted PCX training step (forward init, T node steps, one weight step)."""
    import jax
    import jax.numpy as jnp
    import optax
    import pcx as px
    import pcx.functional as pxf
    import pcx.nn as pxnn
    import pcx.predictive_coding as pxc
    import pcx.utils as pxu

    class MLP(pxc.EnergyModule):
        def __init__(self) -> None:
            super().__init__()
            self.layers = [pxnn.Linear(784, 256), pxnn.Linear(256, 256), pxnn.Linear(256, 10)]
            self.vodes = [pxc.Vode(), pxc.Vode(), pxc.Vode(pxc.se_energy)]
            self.vodes[-1].h.frozen = True

        def __call__(self, x, y):
            for vode, layer in zip(self.vodes[:-1], self.layers[:-1]):
                x = vode(jax.nn.tanh(layer(x)))
            x = self.vodes[-1](self.layers[-1](x))
            if y is not None:
                self.vodes[-1].set("h", y)
            return self.vodes[-1].get("u")

    @pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0, 0), out_axes=0)
    def forward(x, y, *, model):
        return model(x, y)

    @pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0,), out_axes=(None, 0), axis_name="batch")
    def energy(x, *, model):
        y_ = model(x, None)
        return jax.lax.psum(model.energy(), "batch"), y_

    @pxf.jit(static_argnums=0)
    def train_on_batch(T, x, y, *, model, optim_w, optim_h):
        model.train()
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            forward(x, y, model=model)
        optim_h.init(pxu.M_hasnot(pxc.VodeParam, frozen=True)(model))
        for _ in range(T):
            with pxu.step(model, clear_params=pxc.VodeParam.Cache):
                _, g = pxf.value_and_grad(pxu.M_hasnot(pxc.VodeParam, frozen=True).to([False, True]), has_aux=True)(energy)(x, model=model)
            optim_h.step(model, g["model"])
        optim_h.clear()
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(pxu.M(pxnn.LayerParam).to([False, True]), has_aux=True)(energy)(x, model=model)
        optim_w.step(model, g["model"])

    px.RKG.seed(0)
    model = MLP()
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, None, model=model)
        optim_h = pxu.Optim(lambda: optax.sgd(0.1))
        optim_w = pxu.Optim(lambda: optax.sgd(1e-3), pxu.M(pxnn.LayerParam)(model))

    def step() -> None:
        train_on_batch(T, x, y, model=model, optim_w=optim_w, optim_h=optim_h)
        jax.block_until_ready(jax.tree_util.tree_leaves(pxu.M(pxnn.LayerParam)(model)))

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    try:
        import pcx  # noqa: F401
    except ImportError:
        sys.exit("PCX is not installed here; see this script's docstring for an environment with it.")
    import numpy as np
    import torch
    from torch import nn

    from pcctrl import PCNetwork

    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((256, 784)).astype(np.float32)
    y_np = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 256)]
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    torch.manual_seed(0)
    # Value nodes where PCX has its vodes: after each tanh(linear(.)), and at the output.
    model = nn.Sequential(nn.Sequential(nn.Linear(784, 256), nn.Tanh()),
                          nn.Sequential(nn.Linear(256, 256), nn.Tanh()), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def backprop() -> None:
        opt.zero_grad(set_to_none=True)
        (0.5 * (model(x) - y).square().sum(1).mean()).backward()
        opt.step()

    print(f"MLP 784-256-256-10 tanh, batch 256, {THREADS} thread(s); medians of {args.repeats}")
    print(f"torch backprop step: {_median_ms(backprop, args.repeats):.2f} ms")
    print(f"{'T':>3}{'pcctrl ms':>11}{'PCX ms':>9}{'pcctrl/PCX':>12}  bar <= 1.0")
    for T in (1, 8, 20):
        net = PCNetwork(model, algorithm="il", T=T, x_lr=0.1)
        ours = lambda: net.train_step(x, y, opt)  # noqa: E731
        theirs = pcx_step(T, x_np, y_np)
        rounds = [(_median_ms(ours, args.repeats // 3), _median_ms(theirs, args.repeats // 3)) for _ in range(3)]
        a, b = statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)
        print(f"{T:>3}{a:11.2f}{b:9.2f}{a / b:12.2f}  {'yes' if a <= b else 'NO'}")


if __name__ == "__main__":
    main()
