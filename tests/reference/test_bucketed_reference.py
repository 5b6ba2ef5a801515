"""Every bucket-safe reference configuration again, through the multi-tensor path.

Each per-leaf reference module runs its step-by-step comparisons through one
helper (``MODULES`` below): ``compare_with_torch``, ``compare``,
``compare_with_optax`` or ``_run``. This module takes every parametrization of
every test that calls such a helper and, at collection time, runs the test up to
the helper call to get its optimlab side; configurations that
``optimlab.bucketed`` refuses as not bucket-safe are not generated. Each kept
configuration then runs the per-leaf test itself with the helper wrapped: the
optimlab side becomes ``optimlab.bucketed(...)``, and everything else (the
reference optimizer, the gradients, the number of steps, mid-run hyperparameter
changes, the tolerances) is the per-leaf test's own. Against torch, the bucketed
state is converted with ``optimlab.unbucket_state`` before the test's state map
reads it, so every torch state leaf is compared as well. Every run asserts that
its state is a ``BucketedState`` in which every leaf is packed (all reference
leaves are far smaller than the default ``min_leaf_size``) and no bucket is empty.

Tolerances are those of the per-leaf tests, unchanged. Bucketing runs the same
elementwise arithmetic; XLA vectorises a bucket's loop and may contract
``a * b + c`` differently from the per-leaf loops, a last-ulp effect well inside
them.

Time budget: the float32 tier runs for every configuration; the other tiers
(float64 and float32_x32) for the first and the last configuration of each test
(the all-off and all-on corners of the grids). The per-leaf configurations'
marks (``slow``) are kept.

Not generated: tests that do not go through these helpers, in particular those
on a single leaf (complex parameters, closed-form constant-gradient checks),
which a bucket would not change since a single small leaf is never bucketed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import jax
import pytest

import optimlab as ol
from tests.reference import (
    test_optax_adaptive,
    test_optax_core,
    test_optax_recent,
    test_torch_adaptive,
    test_torch_core,
    test_torch_misc,
)
from tests.reference.harness import find

TIER_ARGS = ("dtype", "tier")
EVERY_CONFIG_TIER = "float32"
_ParameterSet = type(pytest.param(None))


def _assert_bucketed(state: Any, params: Any) -> None:
    """Every leaf of ``params`` is packed, and every bucket of the state is non-empty."""
    assert isinstance(state, ol.BucketedState), type(state).__name__
    assert len(state.offsets) == len(jax.tree.leaves(params)), "a leaf was not bucketed"
    nodes = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, ol.Buckets))
    assert all(x.buckets for x in nodes if isinstance(x, ol.Buckets))


def _bucketed(tx: ol.GradientTransformation, seen: dict | None = None) -> ol.GradientTransformation:
    """``optimlab.bucketed(tx)``; its init checks the state and records itself in ``seen``."""
    wrapped = ol.bucketed(tx)

    def init(params):
        state = wrapped.init(params)
        _assert_bucketed(state, params)
        if seen is not None:
            seen.update(tx=wrapped, params=params)
        return state

    return ol.GradientTransformation(init, wrapped.update)


def _torch_route(original: Callable[..., Any]) -> Callable[..., Any]:
    def compare_with_torch(make_ours, torch_cls, torch_kwargs, state_map, **kwargs):
        seen: dict = {}

        def per_leaf_state_map(state):
            _assert_bucketed(state, seen["params"])
            per_leaf = ol.unbucket_state(seen["tx"], state, seen["params"])
            find(per_leaf, ol.HyperparamsState)  # the wrapped alias's own state
            return state_map(per_leaf)

        return original(
            lambda: _bucketed(make_ours(), seen),
            torch_cls,
            torch_kwargs,
            per_leaf_state_map,
            **kwargs,
        )

    return compare_with_torch


def _factory_route(original: Callable[..., Any]) -> Callable[..., Any]:
    def helper(make_ours, *args, **kwargs):
        return original(lambda: _bucketed(make_ours()), *args, **kwargs)

    return helper


def _transformation_route(original: Callable[..., Any]) -> Callable[..., Any]:
    def helper(ours, *args, **kwargs):
        return original(_bucketed(ours), *args, **kwargs)

    return helper


# Per-leaf module -> (its comparison helper, whose first argument is the optimlab side
# as a factory or, for _run, as a transformation; the helper wrapped for bucketed).
MODULES = {
    test_torch_core: ("compare_with_torch", _torch_route),
    test_torch_adaptive: ("compare_with_torch", _torch_route),
    test_torch_misc: ("compare_with_torch", _torch_route),
    test_optax_core: ("compare", _factory_route),
    test_optax_adaptive: ("compare_with_optax", _factory_route),
    test_optax_recent: ("_run", _transformation_route),
}


def _value_id(ids: Any, name: str, value: Any, index: int) -> str:
    if callable(ids) and (got := ids(value)) is not None:
        return str(got)
    if value is None or isinstance(value, str | int | float | bool):
        return str(value)
    return f"{name}{index}"


def _parametrizations(fn: Callable[..., Any]):
    """Every (kwargs, id, marks) of a test's parametrize marks, with ids like pytest's."""
    axes = []
    for mark in getattr(fn, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names, values = mark.args[0], mark.args[1]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        ids = mark.kwargs.get("ids")
        axis = []
        for i, value in enumerate(values):
            if not isinstance(value, _ParameterSet):
                value = pytest.param(*([value] if len(names) == 1 else value))
            if value.id is not None:
                pid = value.id
            elif isinstance(ids, list | tuple):
                pid = ids[i]
            else:
                pid = "-".join(
                    _value_id(ids, n, v, i) for n, v in zip(names, value.values, strict=True)
                )
            axis.append((dict(zip(names, value.values, strict=True)), pid, list(value.marks)))
        axes.append(axis)
    for combo in itertools.product(*axes):
        kwargs = {k: v for kw, _, _ in combo for k, v in kw.items()}
        yield kwargs, "-".join(pid for _, pid, _ in combo), [m for *_, ms in combo for m in ms]


class _Reached(Exception):
    def __init__(self, ours):
        super().__init__()
        self.ours = ours


def _optimlab_side(module: Any, helper: str, fn: Callable[..., Any], kwargs: dict) -> Any:
    """Runs ``fn(**kwargs)`` up to its helper call: the optimlab transformation (None: skipped)."""

    def reached(ours, *args, **kwargs):
        raise _Reached(ours)

    original = getattr(module, helper)
    setattr(module, helper, reached)
    try:
        fn(**kwargs)
    except _Reached as r:
        return r.ours() if callable(r.ours) else r.ours
    except pytest.skip.Exception:
        return None
    finally:
        setattr(module, helper, original)
    raise AssertionError(f"{fn.__name__}({kwargs}) did not call {helper}")


def _bucket_safe(tx: ol.GradientTransformation) -> bool:
    try:
        ol.bucketed(tx)
    except ValueError as e:
        if "bucket-safe" in str(e):
            return False
        raise
    return True


def _config(kwargs: dict) -> list:
    """A test's arguments but the tier."""
    return [(k, v) for k, v in kwargs.items() if k not in TIER_ARGS]


def _cases() -> list:
    cases = []
    for module, (helper, _) in MODULES.items():
        short = module.__name__.rsplit(".test_", 1)[-1]
        for name, fn in vars(module).items():
            code = getattr(fn, "__code__", None)
            if not name.startswith("test_") or code is None or helper not in code.co_names:
                continue
            runs = list(_parametrizations(fn))
            configs: list = []  # each configuration once, with its verdict
            for kwargs, _, _ in runs:
                if all(_config(kwargs) != c for c, _ in configs):
                    tx = _optimlab_side(module, helper, fn, kwargs)
                    configs.append((_config(kwargs), tx is not None and _bucket_safe(tx)))
            safe = [c for c, ok in configs if ok]
            for kwargs, pid, marks in runs:
                config = _config(kwargs)
                tier = next((kwargs[a] for a in TIER_ARGS if a in kwargs), EVERY_CONFIG_TIER)
                if config not in safe:
                    continue
                # The first and the last configuration run in every tier, the others in
                # EVERY_CONFIG_TIER only.
                if tier == EVERY_CONFIG_TIER or config in (safe[0], safe[-1]):
                    cid = f"{short}.{name}" + (f"-{pid}" if pid else "")
                    cases.append(pytest.param(module, fn, kwargs, id=cid, marks=marks))
    return cases


CASES = _cases()


@pytest.mark.parametrize("module,fn,kwargs", CASES)
def test_through_bucketed(module, fn, kwargs, monkeypatch):
    helper, route = MODULES[module]
    monkeypatch.setattr(module, helper, route(getattr(module, helper)))
    fn(**kwargs)
