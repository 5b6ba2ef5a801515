"""Shared pieces of the benchmarks: tree structures, timing, the bandwidth floor."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def machine() -> str:
    dev = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.node() or 'host'}: {cpu}, {os.cpu_count()} cores, "
        f"jax {jax.__version__} on {dev.platform} ({dev.device_kind})"
    )


def one_leaf(n: int = 10_000_000) -> dict[str, tuple[int, ...]]:
    return {"w": (n,)}


def transformer_like(target: int = 10_000_000, layers: int = 16) -> dict[str, tuple[int, ...]]:
    """~`target` parameters in ~12 leaves per layer (~200 leaves): an unscanned transformer."""
    # per layer: 12 d^2 (attention 4 d^2 + mlp 8 d^2) parameters.
    d = int((target / (12 * layers)) ** 0.5)
    d -= d % 8
    shapes: dict[str, tuple[int, ...]] = {"embed": (512, d)}
    for i in range(layers):
        p = f"layer{i:02d}"
        shapes.update(
            {
                f"{p}/ln1/scale": (d,),
                f"{p}/ln1/bias": (d,),
                f"{p}/attn/qkv": (d, 3 * d),
                f"{p}/attn/qkv_bias": (3 * d,),
                f"{p}/attn/out": (d, d),
                f"{p}/attn/out_bias": (d,),
                f"{p}/ln2/scale": (d,),
                f"{p}/ln2/bias": (d,),
                f"{p}/mlp/up": (d, 4 * d),
                f"{p}/mlp/up_bias": (4 * d,),
                f"{p}/mlp/down": (4 * d, d),
                f"{p}/mlp/down_bias": (d,),
            }
        )
    shapes["final_ln/scale"] = (d,)
    return shapes


def many_leaves(n_leaves: int = 2000, size: int = 1000) -> dict[str, tuple[int, ...]]:
    return {f"p{i:05d}": (size,) for i in range(n_leaves)}


STRUCTURES: dict[str, Callable[[], dict[str, tuple[int, ...]]]] = {
    "1 leaf x 10M": one_leaf,
    "~200 leaves, ~10M": transformer_like,
    "2,000 leaves x 1,000": many_leaves,
}


def n_params(shapes: dict[str, tuple[int, ...]]) -> int:
    return int(sum(np.prod(s) for s in shapes.values()))


def make_tree(shapes: dict[str, tuple[int, ...]], seed: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    return {
        k: jnp.asarray(rng.standard_normal(s, dtype=np.float32) * scale) for k, s in shapes.items()
    }


def block(tree: Any) -> None:
    jax.tree.map(lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, tree)


def time_loop(
    step: Callable[[], None], *, warmup: int = 3, repeats: int = 15, min_time: float = 0.3
) -> float:
    """Median seconds per call of ``step`` (which must block until done)."""
    for _ in range(warmup):
        step()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start < min_time and len(times) < 500):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_interleaved(
    steps: dict[str, Callable[[], None]],
    *,
    warmup: int = 3,
    repeats: int = 15,
    min_time: float = 0.3,
) -> dict[str, float]:
    """Median seconds per call of each of ``steps``, timed in turns.

    Each round calls every step once, so a drift of the host while they are timed
    (clock, memory bandwidth, a neighbour's load) falls on all of them alike and
    cancels in their ratios; timed one after another, each would meet its own.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    start = time.perf_counter()
    rounds = 0
    budget = min_time * len(steps)
    while rounds < repeats or (time.perf_counter() - start < budget and rounds < 500):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
        rounds += 1
    return {k: statistics.median(v) for k, v in times.items()}


def compile_seconds(tx, shapes, apply_updates, *, standard: bool = False) -> tuple[float, float]:
    """(trace and lower, compile) seconds of one jitted, donated ``tx`` step, from scratch.

    Float32 leaves of ``shapes``, given as shapes only; ``standard`` promotion for
    libraries that rely on it (optax), else strict. The step is a new function at
    each call, so nothing comes from JAX's caches.
    """
    params = {k: jax.ShapeDtypeStruct(s, jnp.float32) for k, s in shapes.items()}

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    with jax.numpy_dtype_promotion("standard" if standard else "strict"):
        state = jax.eval_shape(tx.init, params)
        t0 = time.perf_counter()
        lowered = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, params)
        t1 = time.perf_counter()
        lowered.compile()
    return t1 - t0, time.perf_counter() - t1


def jax_step_runner(tx, shapes, *, apply_updates) -> tuple[float, Callable[[], None]]:
    """(compile seconds, a function running one jitted, donated ``tx`` step and blocking)."""
    params = make_tree(shapes)
    grads = make_tree(shapes, seed=1, scale=1e-3)

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    jitted = jax.jit(step, donate_argnums=(0, 1))
    state = jax.jit(tx.init)(params)
    t0 = time.perf_counter()
    compiled = jitted.lower(params, state, grads).compile()
    compile_s = time.perf_counter() - t0
    box = [params, state]

    def run():
        box[0], box[1] = compiled(box[0], box[1], grads)
        block(box)

    return compile_s, run


def floor_timer(n: int, bytes_per_param: int) -> float:
    """Median seconds of one step of :func:`floor_runner`."""
    return time_loop(floor_runner(n, bytes_per_param))


def floor_runner(n: int, bytes_per_param: int) -> Callable[[], None]:
    """One fused elementwise pass touching `bytes_per_param` B/param.

    28 B (Adam): read p, g, m, v and write p, m, v. 20 B (SGD momentum): read p, g, b
    and write p, b. One flat float32 array, donated, as one XLA loop fusion.
    """
    p = jnp.ones((n,), jnp.float32)
    g = jnp.full((n,), 1e-3, jnp.float32)
    if bytes_per_param == 28:
        m = jnp.zeros((n,), jnp.float32)
        v = jnp.zeros((n,), jnp.float32)

        def f(p, m, v, g):
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            return p - 1e-3 * m / (jnp.sqrt(v) + 1e-8), m, v

        jf = jax.jit(f, donate_argnums=(0, 1, 2))
        box = [p, m, v]

        def run():
            box[0], box[1], box[2] = jf(box[0], box[1], box[2], g)
            block(box)
    else:
        b = jnp.zeros((n,), jnp.float32)

        def f(p, b, g):
            b = 0.9 * b + g
            return p - 1e-3 * b, b

        jf = jax.jit(f, donate_argnums=(0, 1))
        box = [p, b]

        def run():
            box[0], box[1] = jf(box[0], box[1], g)
            block(box)

    return run


def torch_step_runner(make_opt, shapes) -> Callable[[], None]:
    """A function running one step of the torch optimizer ``make_opt`` builds."""
    import torch

    rng = np.random.default_rng(0)
    params = [
        torch.tensor(rng.standard_normal(s, dtype=np.float32), requires_grad=True)
        for s in shapes.values()
    ]
    for p in params:
        p.grad = torch.full_like(p, 1e-3)
    opt = make_opt(params)
    opt.step()  # one step here: an optimizer that cannot run fails where it is built
    return opt.step
