"""Hostile and damaged input: fuzzed checkpoints, memory bounds, integer gradients, temporaries.

The error registry (``tests/registry/_hostile.py``) holds one case per class of bad
input; this module holds the checks that are not a single call: a fuzz run of
``checkpoint.restore`` / ``load_tree`` over mutated manifests and archive bytes
(only ``CheckpointError`` or an exact restore), the peak host memory of restoring
hostile files, integer gradients through every registered optimizer, and the
cleaning of temporaries an interrupted save left behind.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optimlab as ol
from optimlab import checkpoint
from tests import problems
from tests.registry import CASES, case_ids

P = {"w": jnp.arange(3.0), "b": {"c": jnp.ones((2, 2))}}


def _bitwise_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b) and len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _state():
    tx = ol.adam(0.1)
    return tx.update(P, tx.init(P), P)[1]


_STATE = _state()
_TREE = {"state": {0: {"step": np.float32(3), "exp_avg": np.arange(3.0)}}, "lr": 0.1}


def _saved(kind: str) -> tuple[bytes, dict[str, np.ndarray], dict]:
    """A valid checkpoint's bytes, arrays and manifest."""
    path = pathlib.Path(tempfile.mkdtemp()) / "ck.npz"
    if kind == "state":
        checkpoint.save(path, _STATE)
    else:
        checkpoint.save_tree(path, _TREE)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    manifest = json.loads(arrays.pop("__manifest__").tobytes())
    return path.read_bytes(), arrays, manifest


def _load(kind: str, path: pathlib.Path):
    if kind == "state":
        return checkpoint.restore(path, ol.adam(0.1).init(P))
    return checkpoint.load_tree(path)


def _check_exact_or_refused(kind: str, path: pathlib.Path) -> None:
    try:
        out = _load(kind, path)
    except checkpoint.CheckpointError:
        return
    if kind == "state":
        _bitwise_equal(out, _STATE)
    else:
        assert out["lr"] == _TREE["lr"]
        np.testing.assert_array_equal(
            out["state"][0]["exp_avg"], _TREE["state"][0]["exp_avg"], strict=True
        )
        np.testing.assert_array_equal(
            out["state"][0]["step"], _TREE["state"][0]["step"], strict=True
        )


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _mutate(manifest, path, how, value):
    """``manifest`` with the node at ``path`` replaced by ``value`` or deleted."""
    if not path:
        return value
    node = manifest
    for k in path[:-1]:
        node = node[k]
    if how == "delete":
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return manifest


def _manifest_case(kind, data, seed_path, how, value):
    _, arrays, manifest = _saved(kind)
    paths = list(_paths(manifest))
    manifest = _mutate(manifest, paths[seed_path % len(paths)], how, value)
    path = pathlib.Path(tempfile.mkdtemp()) / "m.npz"
    text = json.dumps(manifest, allow_nan=True).encode()
    np.savez(path, **arrays, __manifest__=np.frombuffer(text, np.uint8))
    _check_exact_or_refused(kind, path)


def _bytes_case(kind, edits, cut):
    data = bytearray(_saved(kind)[0])
    for pos, byte in edits:
        data[pos % len(data)] = byte
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    path = pathlib.Path(tempfile.mkdtemp()) / "b.npz"
    path.write_bytes(bytes(data))
    _check_exact_or_refused(kind, path)


_manifest_args = (
    st.sampled_from(["state", "tree"]),
    st.integers(0, 10_000),
    st.sampled_from(["replace", "delete"]),
    _json,
)
_bytes_args = (
    st.sampled_from(["state", "tree"]),
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=4),
    st.none() | st.integers(0, 1 << 20),
)
_FAST = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_SLOW = settings(
    max_examples=1500,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@_FAST
@given(*_manifest_args)
def test_fuzzed_manifests_restore_exactly_or_raise_checkpoint_error(kind, seed_path, how, value):
    _manifest_case(kind, None, seed_path, how, value)


@_FAST
@given(*_bytes_args)
def test_fuzzed_archive_bytes_restore_exactly_or_raise_checkpoint_error(kind, edits, cut):
    _bytes_case(kind, edits, cut)


@pytest.mark.slow
@_SLOW
@given(*_manifest_args)
def test_fuzzed_manifests_sweep(kind, seed_path, how, value):
    _manifest_case(kind, None, seed_path, how, value)


@pytest.mark.slow
@_SLOW
@given(*_bytes_args)
def test_fuzzed_archive_bytes_sweep(kind, edits, cut):
    _bytes_case(kind, edits, cut)


# ---------------------------------------------------------------- memory bound


def _declared_bytes(path) -> int:
    manifest = checkpoint.read_manifest(path)
    return sum(math.prod(e["shape"]) * np.dtype(e["dtype"]).itemsize for e in manifest["leaves"])


def _peak_restore_bytes(path, template) -> int:
    tracemalloc.start()
    try:
        checkpoint.restore(path, template)
    except checkpoint.CheckpointError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _npy(arr) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _rezip(path, arrays, manifest, replace=None, extra=None):
    """Rewrites ``path``; ``replace``/``extra``: member name -> (bytes, deflated)."""
    members = {f"{k}.npy": (_npy(v), False) for k, v in arrays.items()}
    members.update(replace or {})
    members.update(extra or {})
    text = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    members["__manifest__.npy"] = (_npy(text), False)
    with zipfile.ZipFile(path, "w") as zf:
        for name, (data, deflated) in members.items():
            kind = zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED
            zf.writestr(name, data, compress_type=kind)


_BOMB = 1 << 26  # 64 MiB of zeros, about 64 KiB deflated


def test_peak_memory_of_restore_is_bounded_by_the_declared_bytes(tmp_path):
    params = {"w": jnp.zeros(1 << 16)}  # 256 KiB per moment
    tx = ol.adam(0.1)
    template = tx.init(params)
    good = checkpoint.save(tmp_path / "good.npz", template)
    declared = _declared_bytes(good)
    with np.load(good) as npz:
        arrays = {k: npz[k] for k in npz.files}
    manifest = json.loads(arrays.pop("__manifest__").tobytes())
    mu = next(e["key"] for e in manifest["leaves"] if e["path"].endswith("mu['w']"))
    zeros_header = _npy(np.zeros(0, np.float32)).replace(b"(0,)", f"({_BOMB // 4},)".encode())
    files = {}
    # A member the manifest does not list, deflated: 64 MiB in a small file.
    files["extra"] = dict(extra={"bomb.npy": (bytes(_BOMB), True)})
    # A listed member whose header declares 64 MiB (deflated zeros).
    files["listed"] = dict(replace={f"{mu}.npy": (zeros_header + bytes(_BOMB), True)})
    # A listed member whose header declares 64 MiB, stored but cut short.
    files["cut"] = dict(replace={f"{mu}.npy": (zeros_header + bytes(1 << 10), False)})
    peaks = {"good": _peak_restore_bytes(good, template)}
    for name, kw in files.items():
        path = tmp_path / f"{name}.npz"
        _rezip(path, arrays, manifest, **kw)
        assert path.stat().st_size < (1 << 20)
        with pytest.raises(checkpoint.CheckpointError):
            checkpoint.restore(path, template)
        peaks[name] = _peak_restore_bytes(path, template)
    for name, peak in peaks.items():
        assert peak <= 2 * declared, (name, peak, declared)


# ---------------------------------------------------------------- integer gradients


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_integer_gradients_update_as_their_float_values(case):
    # Cast once at the mechanism every alias is built on (with_hyperparams): an int
    # gradient gives the float gradient's update. Compositions whose first stage is a
    # primitive (chain(clip, ...), masked, partition, sam) see the gradients as given.
    tx = case.make()
    params = problems.quadratic_params()
    state = tx.init(params)
    if not isinstance(state, ol.HyperparamsState):
        pytest.skip("not an alias: gradients reach a primitive first")
    int_grads = jax.tree.map(lambda p: jnp.arange(p.size).reshape(p.shape) % 5 - 2, params)
    float_grads = jax.tree.map(lambda g, p: g.astype(p.dtype), int_grads, params)
    step = jax.jit(tx.update)
    u_int, s_int = step(int_grads, state, params)
    u_float, s_float = step(float_grads, state, params)
    _bitwise_equal(u_int, u_float)
    _bitwise_equal(s_int, s_float)


# ---------------------------------------------------------------- malformed gradients

_P = {"a": jnp.ones((3, 2)), "b": jnp.ones(4)}
#: Gradients that do not fit the params ``_P``, and the key a message must name.
_MALFORMED = {
    "string_leaf": ({"a": "x", "b": jnp.ones(4)}, TypeError, "['a']"),
    "transposed_leaf": ({"a": jnp.ones((2, 3)), "b": jnp.ones(4)}, ValueError, "['a']"),
    "extra_key": ({**_P, "c": jnp.ones(1)}, ValueError, "['c']"),
    "missing_key": ({"a": jnp.ones((3, 2))}, ValueError, "['b']"),
}


@pytest.mark.parametrize("kind", list(_MALFORMED))
def test_malformed_gradients_are_refused_naming_the_key_path(kind):
    """Every registry case refuses them at trace time with TypeError or ValueError
    naming the key (not an error from deep inside JAX, and never silently)."""
    grads, exc, key = _MALFORMED[kind]
    failures = []
    for case in CASES:
        tx = case.make()
        state = tx.init(_P)
        extra = case.extra_args(_P) if case.extra_args else {}
        try:
            tx.update(grads, state, _P, **extra)
        except exc as e:
            if key not in str(e):
                failures.append(f"{case.id}: does not name {key}: {e}")
        except Exception as e:
            failures.append(f"{case.id}: {type(e).__name__}: {str(e)[:200]}")
        else:
            failures.append(f"{case.id}: accepted")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------- eager and jit agree


@pytest.mark.parametrize("jit", [False, True])
def test_a_refused_checkpoint_is_refused_before_any_step_eager_or_jitted(tmp_path, jit):
    tx = ol.adam(0.1)
    state = tx.init(P)
    bad = ol.set_hyperparams(state, b1=0.5)
    bad = bad._replace(hyperparams=jax.tree.map(lambda x: x.at[1].set(1.5), bad.hyperparams))
    path = checkpoint.save(tmp_path / "bad.npz", bad)
    with pytest.raises(checkpoint.CheckpointError, match=r"index 0: 1\.5"):
        restored = checkpoint.restore(path, state)
        (jax.jit(tx.update) if jit else tx.update)(P, restored, P)


# ---------------------------------------------------------------- temporaries


def test_stale_temporaries_of_the_same_target_are_cleaned_on_the_next_save(tmp_path):
    target = tmp_path / "ck.npz"
    checkpoint.save(target, _STATE)
    # A save killed mid-write leaves its temporary; its process is gone.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".ck.npz.pid{dead_pid}.abc123.tmp"
    stale.write_bytes(b"PK\x03\x04partial")
    old_style = tmp_path / ".ck.npz.xyz789.tmp"  # an older version's name: no pid
    old_style.write_bytes(b"partial")
    hour_ago = time.time() - 2 * 3600
    os.utime(old_style, (hour_ago, hour_ago))
    live = tmp_path / f".ck.npz.pid{os.getppid()}.live.tmp"  # a save in progress elsewhere
    live.write_bytes(b"partial")
    other = tmp_path / f".other.npz.pid{dead_pid}.abc.tmp"  # another target's
    other.write_bytes(b"partial")
    checkpoint.save(target, _STATE)
    assert sorted(os.listdir(tmp_path)) == sorted(["ck.npz", live.name, other.name])
    _bitwise_equal(checkpoint.restore(target, ol.adam(0.1).init(P)), _STATE)


def test_a_killed_save_leaves_the_previous_checkpoint_and_the_next_save_cleans_up(tmp_path):
    target = tmp_path / "ck.npz"
    checkpoint.save(target, _STATE)
    code = (
        "import os, numpy as np, jax.numpy as jnp\n"
        "from optimlab import checkpoint\n"
        "def die(f, **arrays):\n"
        "    f.write(b'PK\\x03\\x04partial'); f.flush(); os._exit(9)\n"
        "np.savez = die\n"
        f"checkpoint.save({str(target)!r}, {{'x': jnp.ones(3)}})\n"
    )
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(__file__).parents[1]))
    killed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert killed.returncode == 9
    assert len(os.listdir(tmp_path)) == 2  # the checkpoint and the killed save's temporary
    _bitwise_equal(checkpoint.restore(target, ol.adam(0.1).init(P)), _STATE)
    checkpoint.save(target, _STATE)
    assert os.listdir(tmp_path) == ["ck.npz"]


# ---------------------------------------------------------------- optim loads


def test_a_saturated_optim_step_round_trips():
    from optimlab import optim

    opt = optim.Adam({"w": jnp.ones(3)}, lr=0.1)
    opt.step({"w": jnp.ones(3)})
    sd = opt.state_dict()
    sd["state"][0]["step"] = np.float32(2**31 - 1)  # a saturated count exports as 2**31
    opt.load_state_dict(sd)
    assert int(opt.state[0]["step"]) == 2**31
    opt.step({"w": jnp.ones(3)})
    assert np.isfinite(np.asarray(opt.params["w"])).all()
