"""Step-by-step comparison of an optimlab optimizer with a real torch.optim optimizer.

Both sides start from the same parameters and, at every step, receive the same
gradient function evaluated at their *own* current parameters (so any drift
would feed back and grow). After each step, parameters and every mapped state
leaf are compared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

import optimlab as ol

SHAPES: dict[str, tuple[int, ...]] = {"w": (3, 4), "b": (4,), "s": (), "v": (5,)}


def init_params(seed: int = 0, shapes: Mapping[str, tuple[int, ...]] = SHAPES) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s) for k, s in shapes.items()}


def make_grad_fn(seed: int = 1, shapes: Mapping[str, tuple[int, ...]] = SHAPES, steps: int = 40):
    """g_k(p) = c * p + noise_k with fixed curvature c and a fixed noise sequence."""
    rng = np.random.default_rng(seed)
    curv = {k: rng.uniform(0.5, 2.0, size=s) for k, s in shapes.items()}
    noise = [{k: rng.normal(scale=0.3, size=s) for k, s in shapes.items()} for _ in range(steps)]

    def grad_fn(k: int, params: Mapping[str, np.ndarray]) -> dict:
        return {n: curv[n] * np.asarray(params[n], np.float64) + noise[k][n] for n in params}

    return grad_fn


def find(state: Any, cls: type) -> Any:
    """The first node of type ``cls`` inside a state tree."""
    found = []

    def visit(x):
        if isinstance(x, cls) and not found:
            found.append(x)
        return isinstance(x, cls)

    jax.tree_util.tree_flatten(state, is_leaf=visit)
    if not found:
        raise AssertionError(f"no {cls.__name__} in the state")
    return found[0]


def compare_with_torch(
    make_ours: Callable[[], Any],
    torch_cls: type,
    torch_kwargs: Mapping[str, Any],
    state_map: Callable[[Any], Mapping[str, Any]],
    *,
    dtype: str,
    rtol: float,
    atol: float,
    steps: int = 20,
    seed: int = 0,
    grad_fn: Callable[[int, Mapping[str, np.ndarray]], dict] | None = None,
    shapes: Mapping[str, tuple[int, ...]] = SHAPES,
    params: Mapping[str, np.ndarray] | None = None,
    before_step: Callable[[int, Any, Any], Any] | None = None,
) -> dict[str, float]:
    """Runs both optimizers and asserts closeness at every step.

    ``state_map(our_state)`` returns ``{torch_state_key: tree_like_params}`` (or a
    scalar for keys such as ``step``). ``before_step(k, torch_opt, our_state)`` may
    change hyperparameters on both sides and returns the new optimlab state.
    Returns the worst relative deviation seen, per compared quantity.
    """
    # "float32" runs with x64 enabled so hyperparameters are float64 scalars, as
    # torch's Python floats are; "float32_x32" is JAX's default (float32 scalars).
    x64 = dtype in ("float64", "float32")
    np_dtype = np.float64 if dtype == "float64" else np.float32
    torch_dtype = torch.float64 if dtype == "float64" else torch.float32
    grad_fn = grad_fn or make_grad_fn(seed + 1, shapes, max(steps, 40))
    start = params if params is not None else init_params(seed, shapes)
    worst: dict[str, float] = {}

    def record(key, ours, theirs):
        ours = np.asarray(ours, np.float64)
        theirs = np.asarray(theirs, np.float64)
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=key)
        scale = np.maximum(np.abs(theirs), atol / rtol)
        dev = float(np.max(np.abs(ours - theirs) / scale)) if ours.size else 0.0
        worst[key.split("[")[0]] = max(worst.get(key.split("[")[0], 0.0), dev)

    with jax.enable_x64(x64):
        tparams = {
            k: torch.tensor(np.asarray(v, np_dtype), dtype=torch_dtype, requires_grad=True)
            for k, v in start.items()
        }
        topt = torch_cls(list(tparams.values()), **torch_kwargs)
        names = list(tparams)
        tx = make_ours()
        ours = {k: jnp.asarray(np.asarray(v, np_dtype)) for k, v in start.items()}
        state = tx.init(ours)
        step = jax.jit(lambda g, s, p: tx.update(g, s, p))
        for k in range(steps):
            if before_step is not None:
                state = before_step(k, topt, state)
            tg = grad_fn(k, {n: t.detach().numpy() for n, t in tparams.items()})
            og = grad_fn(k, {n: np.asarray(v) for n, v in ours.items()})
            for n, t in tparams.items():
                t.grad = torch.tensor(np.asarray(tg[n], np_dtype), dtype=torch_dtype)
            topt.step()
            updates, state = step(
                {n: jnp.asarray(np.asarray(og[n], np_dtype)) for n in ours}, state, ours
            )
            ours = ol.apply_updates(ours, updates)
            for n in names:
                assert ours[n].dtype == jnp.dtype(np_dtype)
                record(f"param[{n}] step {k}", ours[n], tparams[n].detach().numpy())
            mapped = state_map(state)
            for key, tree in mapped.items():
                for i, n in enumerate(names):
                    theirs = topt.state[tparams[n]][key]
                    theirs = theirs.detach().numpy() if torch.is_tensor(theirs) else theirs
                    mine = tree[n] if isinstance(tree, Mapping) else tree
                    record(f"{key}[{n}] step {k} (param {i})", mine, theirs)
    return worst


def torch_terms(cfg: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """``cfg`` with the terms torch skips at zero (``momentum``...) passed as ``None``.

    torch leaves a zero momentum out of the step (no buffer); optimlab keeps a term
    built at ``0.0`` in the state, settable later, and leaves it out for ``None``.
    """
    return {k: (None if k in names and v == 0 else v) for k, v in cfg.items()}
