"""pcctrl's PC training step against PCX's (JAX), same MLP, same T, measured in one run.

MLP 784-256-256-10 (tanh), batch 256, squared-error output energy, T inference steps of plain
gradient descent on the nodes then one SGD weight step, in both libraries. Prints the median
step time of each (pcctrl on its default fused path and, beside it, on the autograd path
``fused=False``), their ratio (bar: pcctrl/PCX <= 0.8 at T = 1, 8, 20), PCX's first-call (jit
compile) time, and torch's backprop step. Rounds alternate between the contenders.
PCX needs JAX: ``pip install pcx`` (0.6.3 pulls jax/jaxlib 0.4.38, optax, equinox) into the same
environment as pcctrl, then ``python benchmarks/pcx_compare.py``. One CPU thread for both by
default (``PCX_COMPARE_THREADS``); ``--device cuda`` runs pcctrl on CUDA (JAX on its default
backend, which is printed). Times are given on the wall clock and as the process's CPU time
(all its threads), which on an oversubscribed machine leaves out waiting for a core. With one
thread the process is pinned to one core (``--no-pin`` to measure without), because XLA keeps
running work on a second core despite its one-thread flags.
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
# XLA's CPU runtime still runs work on further threads under those flags (its CPU time exceeds its
# wall time), so "one thread each" is enforced by pinning this process to one core before either
# library starts a thread (threads inherit the mask). --no-pin measures without it.
PINNED: set[int] | None = None
if THREADS == 1 and "--no-pin" not in sys.argv and hasattr(os, "sched_setaffinity"):
    PINNED = {min(os.sched_getaffinity(0))}
    os.sched_setaffinity(0, PINNED)


def _median_ms(step: Callable[[], None], repeats: int, sync: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """Median wall and CPU (``time.process_time``, all threads of this process) ms per call."""
    step()
    sync()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        sync()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000 * statistics.median(wall), 1000 * statistics.median(cpu)


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
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per contender per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="pcctrl's device (cpu or cuda)")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the process to one core (XLA then also uses a second core)")
    args = parser.parse_args()
    try:
        import pcx  # noqa: F401
    except ImportError:
        sys.exit("PCX is not installed here: pip install pcx (see this script's docstring).")
    import jax
    import numpy as np
    import torch
    from torch import nn

    from pcctrl import PCNetwork

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((256, 784)).astype(np.float32)
    y_np = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 256)]
    x, y = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)
    torch.manual_seed(0)
    # Value nodes where PCX has its vodes: after each tanh(linear(.)), and at the output.
    model = nn.Sequential(nn.Sequential(nn.Linear(784, 256), nn.Tanh()),
                          nn.Sequential(nn.Linear(256, 256), nn.Tanh()), nn.Linear(256, 10)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def backprop() -> None:
        opt.zero_grad(set_to_none=True)
        (0.5 * (model(x) - y).square().sum(1).mean()).backward()
        opt.step()

    print(f"MLP 784-256-256-10 tanh, batch 256, {THREADS} thread(s); pcctrl on {device}, JAX on "
          f"{jax.default_backend()}; medians of {args.rounds} interleaved rounds x {args.repeats} steps; "
          f"{'pinned to core ' + str(min(PINNED)) if PINNED else 'not pinned'}")
    bp_wall, bp_cpu = _median_ms(backprop, 3 * args.repeats, sync)
    print(f"torch backprop step: {bp_wall:.2f} ms wall, {bp_cpu:.2f} ms cpu")
    print(f"{'T':>3} {'clock':<5}{'pcctrl ms':>10}{'eager ms':>10}{'PCX ms':>9}{'pcctrl/PCX':>12}"
          f"{'eager/PCX':>11}  bar <= 0.8   PCX first call (jit) s")
    for T in (1, 8, 20):
        fused = PCNetwork(model, algorithm="il", T=T, x_lr=0.1)
        eager = PCNetwork(model, algorithm="il", T=T, x_lr=0.1, fused=False)
        theirs = pcx_step(T, x_np, y_np)
        start = time.perf_counter()
        theirs()
        compile_s = time.perf_counter() - start
        contenders = {"fused": lambda: fused.train_step(x, y, opt), "eager": lambda: eager.train_step(x, y, opt),
                      "pcx": theirs}
        rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, step in contenders.items():
                rounds[name].append(_median_ms(step, args.repeats, sync))
        for clock, index in (("wall", 0), ("cpu", 1)):
            a, e, b = (statistics.median(r[index] for r in rounds[n]) for n in ("fused", "eager", "pcx"))
            print(f"{T:>3} {clock:<5}{a:10.2f}{e:10.2f}{b:9.2f}{a / b:12.2f}{e / b:11.2f}  "
                  f"{'yes' if a <= 0.8 * b else 'NO':<11}  {compile_s:.1f}")


if __name__ == "__main__":
    main()
