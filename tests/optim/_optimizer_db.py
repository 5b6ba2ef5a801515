"""torch's own optimizer test database (``OptimizerInfo``) run against ``optimlab.optim``.

Every config of every ``OptimizerInfo`` with a counterpart here is run by both
libraries on the same gradients, step by step, comparing parameters and every
state entry; midway each side's state dict is saved to a file (``optim.save`` /
``torch.save``) and loaded by the other side, which continues from it.
"""

from __future__ import annotations

import io
import re
import sys
import types
import unittest
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from optimlab import optim
from tests.optim._pair import NP, Pair
from tests.optim.test_lbfgs_class import _check as lbfgs_check
from tests.optim.test_lbfgs_class import _pair as lbfgs_pair
from tests.optim.test_more_classes import SparsePair

# torch's test utilities import ``expecttest`` (a test-only package) for its TestCase
# base class; the database itself needs nothing from it.
if "expecttest" not in sys.modules:
    _stub = types.ModuleType("expecttest")
    _stub.TestCase = unittest.TestCase  # type: ignore[attr-defined]
    sys.modules["expecttest"] = _stub

from torch.testing._internal import common_optimizers as db

MATRICES = {"w": (3, 4), "v": (2, 5), "u": (4, 4)}
STEPS = 10
# Implementation choices of torch with no numerical meaning (and none in JAX): ours is
# given them, torch's CPU run is not (torch refuses ``capturable`` on CPU, and
# ``differentiable`` on leaf parameters, and ``foreach`` changes no result).
NO_MEANING = ("capturable", "differentiable", "foreach")


def torch_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The config as torch's CPU run takes it (without :data:`NO_MEANING` flags)."""
    return {k: v for k, v in kwargs.items() if k not in NO_MEANING}


def configs() -> list[tuple[str, str, Any]]:
    """``(optimizer, desc, kwargs)`` for every database config with a counterpart.

    The CPU configs (with torch's flag variants), then the CUDA-only ones that add
    flags with no meaning in JAX (``capturable``, ``foreach``) and tensor options.
    """
    out = []
    for info in db.optim_db:
        name: str = info.optim_cls.__name__  # pyright: ignore[reportAttributeAccessIssue]
        if not hasattr(optim, name):
            continue
        seen = set()
        for device in ("cpu", "cuda"):
            inputs = db._get_optim_inputs_including_global_cliquey_kwargs(device, None, info)
            for inp in inputs:
                if inp.desc in seen:
                    continue
                seen.add(inp.desc)
                out.append((name, inp.desc, inp.kwargs))
    return out


def error_inputs() -> list[tuple[str, int, Any]]:
    """``(optimizer, index, ErrorOptimizerInput)`` for every CPU error input."""
    out = []
    for info in db.optim_db:
        name: str = info.optim_cls.__name__  # pyright: ignore[reportAttributeAccessIssue]
        if hasattr(optim, name) and info.optim_error_inputs_func is not None:
            for i, e in enumerate(info.optim_error_inputs_func("cpu", torch.float64)):
                out.append((name, i, e))
    return out


def to_jax(value: Any) -> Any:
    """torch tensors in options as JAX arrays (tuples and lists kept)."""
    if torch.is_tensor(value):
        return jnp.asarray(value.detach().numpy())
    if isinstance(value, (tuple, list)):
        return type(value)(to_jax(v) for v in value)
    return value


def _ours(name: str, kwargs: dict[str, Any]):
    cls = getattr(optim, name)

    def build(params, **_):
        return cls(params, **{k: to_jax(v) for k, v in kwargs.items()})

    return build


def _theirs(name: str, kwargs: dict[str, Any]):
    cls = getattr(torch.optim, name)

    def build(params, **_):
        return cls(params, **torch_kwargs(kwargs))

    return build


def _scalar(v: Any) -> Any:
    if torch.is_tensor(v) or isinstance(v, (np.ndarray, jnp.ndarray)):
        a = np.asarray(v.detach() if torch.is_tensor(v) else v)
        return a.item() if a.size == 1 else a.tolist()
    if isinstance(v, tuple):
        return tuple(_scalar(x) for x in v)
    return v


def _torch_file(sd: Any) -> Any:
    """optim.save, then torch.load with its defaults."""
    buf = io.BytesIO()
    optim.save(sd, buf)
    buf.seek(0)
    return torch.load(buf)


def _for_torch(sd: Any, theirs: Any) -> Any:
    """A state dict with torch's own :data:`NO_MEANING` flags (it refuses ours on CPU)."""
    for g, h in zip(sd["param_groups"], theirs.param_groups, strict=True):
        g.update({k: h[k] for k in NO_MEANING if k in h})
    return sd


def _our_file(sd: Any) -> Any:
    """torch.save, then optim.load."""
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return optim.load(buf)


def check(pair: Pair, where: str) -> None:
    params = pair.ours.params
    for n, t in pair.tparams.items():
        assert params[n].dtype == jnp.dtype(NP[pair.dtype]), where
        np.testing.assert_allclose(
            np.asarray(params[n]),
            t.detach().numpy(),
            rtol=pair.tol["rtol"],
            atol=pair.tol["atol"],
            err_msg=f"{where} param {n}",
        )
    ours, theirs = pair.ours.state_dict(), pair.theirs.state_dict()
    for g, h in zip(ours["param_groups"], theirs["param_groups"], strict=True):
        assert set(g) == set(h), f"{where} group keys {set(g) ^ set(h)}"
        for k in h:
            if k in NO_MEANING:
                continue
            assert _scalar(g[k]) == _scalar(h[k]), f"{where} group {k}: {g[k]} != {h[k]}"
    assert sorted(ours["state"]) == sorted(theirs["state"]), where
    for i, entry in theirs["state"].items():
        assert list(ours["state"][i]) == list(entry), f"{where} state {i}"
        for key, value in entry.items():
            np.testing.assert_allclose(
                np.asarray(ours["state"][i][key], np.float64),
                np.asarray(value.detach() if torch.is_tensor(value) else value, np.float64),
                rtol=pair.tol["rtol"],
                atol=pair.tol["atol"],
                err_msg=f"{where} state {i} {key}",
            )


def run_config(name: str, kwargs: dict[str, Any], dtype: str) -> None:
    """Both libraries through ``STEPS`` steps of one config, checked at every step."""
    if name == "LBFGS":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's own, on tensor lr
            return _run_lbfgs(kwargs)
    kwargs = dict(kwargs)
    shapes = MATRICES
    pair_cls: Any = SparsePair if name == "SparseAdam" else Pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's notes on flag choices
        pair = pair_cls(_ours(name, kwargs), _theirs(name, kwargs), {}, dtype=dtype, shapes=shapes)
        for k in range(STEPS):
            if k == STEPS // 2:
                theirs_sd = _for_torch(_torch_file(pair.ours.state_dict()), pair.theirs)
                ours_sd = _our_file(pair.theirs.state_dict())
                pair.theirs.load_state_dict(theirs_sd)
                pair.ours.load_state_dict(ours_sd)
                check(pair, "after exchanging state dicts")
            pair.step(k)
            check(pair, f"step {k}")


def _run_lbfgs(kwargs: dict[str, Any]) -> None:
    opt, topt, fun, closure, tparams = lbfgs_pair("logistic", {})
    opt = optim.LBFGS(opt.params, **{k: to_jax(v) for k, v in kwargs.items()})
    topt = torch.optim.LBFGS(tparams, **torch_kwargs(kwargs))
    for call in range(4):
        if call == 2:
            theirs_sd = _for_torch(_torch_file(opt.state_dict()), topt)
            ours_sd = _our_file(topt.state_dict())
            topt.load_state_dict(theirs_sd)
            opt.load_state_dict(ours_sd)
        loss_t = topt.step(closure)
        loss = opt.step(fun)
        np.testing.assert_allclose(float(loss), float(loss_t), rtol=1e-6)
        lbfgs_check(opt, topt, tparams, f"call {call}")


def _error_params(inp: Any) -> Any:
    params = inp.params
    if params is None:
        return [jnp.ones((1, 1))], [torch.nn.Parameter(torch.ones(1, 1))]
    return _convert_params(params), params


def _convert_params(params: Any) -> Any:
    if isinstance(params, torch.Tensor):
        return _cached(params)
    if isinstance(params, dict):
        return {k: _convert_params(v) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return type(params)(_convert_params(v) for v in params)
    return params


_CACHE: dict[int, Any] = {}


def _cached(t: torch.Tensor) -> Any:
    """The same JAX array for the same tensor (identity matters for duplicates)."""
    if id(t) not in _CACHE:
        _CACHE[id(t)] = (t, jnp.asarray(t.detach().numpy()))
    return _CACHE[id(t)][1]


def raises_like_torch(name: str, e: Any) -> None:
    """Our optimizer fails as torch does on one error input: type and torch's regex."""
    inp = e.optimizer_error_input
    ours_params, _ = _error_params(inp)
    kwargs = {k: to_jax(v) for k, v in inp.kwargs.items()}
    cls = getattr(optim, name)
    if issubclass(e.error_type, Warning):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cls(ours_params, **kwargs)
        messages = [str(w.message) for w in caught if issubclass(w.category, e.error_type)]
        assert any(re.search(e.error_regex, m) for m in messages), (e.error_regex, messages)
        return
    with pytest.raises(e.error_type, match=e.error_regex):
        opt = cls(ours_params, **kwargs)
        if e.error_on == db.OptimizerErrorEnum.STEP_ERROR:
            if name == "LBFGS":
                opt.step(lambda p: sum(jnp.sum(x) for x in jax.tree.leaves(p)))
            else:
                opt.step(jax.tree.map(jnp.ones_like, opt.params))
