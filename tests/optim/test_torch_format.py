"""optim.save / optim.load: torch's checkpoint file format, against real torch both ways."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import zipfile

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch

from optimlab import optim
from tests.optim._pair import Pair, assert_state_dicts_close
from tests.optim.test_lbfgs_class import CONFIGS as LBFGS_CONFIGS
from tests.optim.test_lbfgs_class import _check as lbfgs_check
from tests.optim.test_lbfgs_class import _pair as lbfgs_pair

GROUPS = [(["b", "w"], {}), (["s", "v"], {"lr": 0.02})]
CASES = {
    "adam": (optim.Adam, torch.optim.Adam, dict(lr=0.01), GROUPS),
    "sgd-momentum": (
        optim.SGD,
        torch.optim.SGD,
        dict(lr=0.05, momentum=0.9, nesterov=True),
        [(["b", "w"], {}), (["s", "v"], {"lr": 0.01, "momentum": 0.5})],
    ),
    "adamw-amsgrad": (
        optim.AdamW,
        torch.optim.AdamW,
        dict(lr=0.01, amsgrad=True, weight_decay=0.1),
        [(["b", "w"], {"betas": (0.8, 0.9)}), (["s", "v"], {})],
    ),
}


def _np(x):
    if not torch.is_tensor(x):
        return x
    if x.dtype == torch.bfloat16:
        return x.detach().float().numpy().astype(ml_dtypes.bfloat16)
    return x.detach().numpy()


def _assert_same(ours, theirs, where=""):
    """Equal structure, types and values, bitwise (tensors as NumPy arrays)."""
    theirs = _np(theirs)
    if isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray), f"{where}: {type(ours)}"
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, where
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), where
        for k in theirs:
            _assert_same(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _assert_same(a, b, f"{where}[{i}]")
    else:
        assert type(ours) is type(theirs) and ours == theirs, f"{where}: {ours!r} != {theirs!r}"


def _resumed(pair, case, from_ours=False):
    cls, tcls, kwargs, groups = case
    if from_ours:
        start = {n: np.array(v) for n, v in pair.ours.params.items()}
    else:
        start = {n: t.detach().numpy().copy() for n, t in pair.tparams.items()}
    fresh = Pair(cls, tcls, kwargs, dtype=pair.dtype, groups=groups, start=start)
    fresh.grad_fn = pair.grad_fn
    return fresh


WRITERS = ["torch-save", "optim-save", "torch-save-ours"]


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("name", CASES)
def test_files_cross_between_libraries_and_training_continues(tmp_path, name, writer):
    # "torch-save-ours" is the torch idiom on our state dict: torch.save(opt.state_dict())
    # then torch.load with its defaults (weights_only=True).
    case = CASES[name]
    path = tmp_path / "opt.pt"
    with jax.enable_x64(True):
        pair = Pair(*case[:3], dtype="float64", groups=case[3])
        pair.run(4)
        if writer != "torch-save":
            save = torch.save if writer == "torch-save-ours" else optim.save
            save(pair.ours.state_dict(), path)
            theirs_sd = torch.load(path)  # torch's defaults: weights_only=True
            _assert_same(pair.ours.state_dict(), theirs_sd)
            assert all(
                t.device.type == "cpu" for s in theirs_sd["state"].values() for t in s.values()
            )
            ours_sd = optim.load(path)
        else:
            torch.save(pair.theirs.state_dict(), path)
            ours_sd = optim.load(path)
            _assert_same(ours_sd, pair.theirs.state_dict())
            theirs_sd = torch.load(path)
        resumed = _resumed(pair, case)
        resumed.theirs.load_state_dict(theirs_sd)
        assert resumed.ours.load_state_dict(ours_sd) is None
        resumed.check("after load")
        for k in range(4, 8):
            resumed.step(k)
            resumed.check(f"resumed step {k}")


@pytest.mark.parametrize("name", CASES)
def test_resuming_from_a_file_continues_bitwise(tmp_path, name):
    cls, _, kwargs, groups = CASES[name]
    with jax.enable_x64(True):
        straight = Pair(*CASES[name][:3], dtype="float32", groups=groups)
        for k in range(4):
            straight.step(k)
        optim.save(straight.ours.state_dict(), tmp_path / "ckpt.pt")
        resumed = _resumed(straight, CASES[name], from_ours=True)
        resumed.ours.load_state_dict(optim.load(tmp_path / "ckpt.pt"))
        for k in range(4, 8):
            straight.step(k)
            resumed.step(k)
        for n in straight.order:
            np.testing.assert_array_equal(
                np.asarray(resumed.ours.params[n]), np.asarray(straight.ours.params[n])
            )
        assert_state_dicts_close(
            resumed.ours.state_dict(), straight.ours.state_dict(), rtol=0, atol=0
        )


@pytest.mark.parametrize("writer", WRITERS)
def test_lbfgs_files_cross_between_libraries(tmp_path, writer):
    problem, options, _ = LBFGS_CONFIGS["logistic-fixed"]
    path = tmp_path / "lbfgs.pt"
    with jax.enable_x64(True):
        opt, topt, fun, closure, tparams = lbfgs_pair(problem, options)
        for _ in range(2):
            topt.step(closure)
            opt.step(fun)
        if writer != "torch-save":
            (torch.save if writer == "torch-save-ours" else optim.save)(opt.state_dict(), path)
            _assert_same(opt.state_dict(), torch.load(path))
        else:
            torch.save(topt.state_dict(), path)
            _assert_same(optim.load(path), topt.state_dict())
        here = {n: t.detach().numpy().copy() for n, t in zip(["b", "w"], tparams, strict=True)}
        opt2, topt2, _, closure2, tparams2 = lbfgs_pair(problem, options, start=here)
        topt2.load_state_dict(torch.load(path))
        opt2.load_state_dict(optim.load(path))
        lbfgs_check(opt2, topt2, tparams2, "after load")
        for call in range(2):
            opt2.step(fun)
            topt2.step(closure2)
            lbfgs_check(opt2, topt2, tparams2, f"resumed call {call}")


def test_values_and_dtypes_round_trip_through_torch():
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    obj = {
        "f64": base,
        "transposed": base.T,
        "f32": np.float32(2.5),
        "f16": np.array([1.5, -2.0], np.float16),
        "bf16": np.array([1.5, 3.0], ml_dtypes.bfloat16),
        "i64": np.array([[1, -2]], np.int64),
        "i32": np.array(7, np.int32),
        "u8": np.array([255], np.uint8),
        "bool": np.array([True, False]),
        "c64": np.array([1 + 2j], np.complex64),
        "empty": np.zeros((0, 3), np.float32),
        "jax": jnp.array([1.0, 2.0]),
        "nested": [1, 2.5, "s", None, True, (0.9, 0.999), {"k": [np.ones(2)]}],
    }
    buf = io.BytesIO()
    optim.save(obj, buf)
    buf.seek(0)
    theirs = torch.load(buf)
    assert theirs["bf16"].dtype == torch.bfloat16 and theirs["c64"].dtype == torch.complex64
    np.testing.assert_array_equal(theirs["transposed"].numpy(), base.T)
    buf2 = io.BytesIO()
    torch.save(theirs, buf2)
    buf2.seek(0)
    back = optim.load(buf2)
    _assert_same(back, theirs)
    _assert_same(back, {k: v if k == "nested" else np.asarray(v) for k, v in obj.items()})


def test_torch_views_offsets_and_shared_storages_load():
    t = torch.arange(20, dtype=torch.float32)
    obj = {"tail": t[5:], "strided": t.view(4, 5)[:, 1::2], "t": t.view(4, 5).T, "same": t}
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    _assert_same(optim.load(buf), {k: v.contiguous() for k, v in obj.items()})


def test_load_does_not_import_torch(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(torch.optim.SGD([torch.zeros(2)], lr=0.1).state_dict(), path)
    code = (
        "import sys; from optimlab import optim; sd = optim.load(sys.argv[1]); "
        "optim.save(sd, sys.argv[1] + '.2'); assert 'torch' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


# ------------------------------------------------------------- hostile files
def _zip(records: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, payload in records.items():
            z.writestr(f"archive/{name}", payload)
    buf.seek(0)
    return buf


def _records(obj) -> dict[str, bytes]:
    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        return {n.split("/", 1)[1]: z.read(n) for n in z.namelist()}


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_hostile_files_are_refused_with_the_file_named(tmp_path, capsys):
    good = _records({"a": torch.arange(4, dtype=torch.float32)})
    evil = dict(good, **{"data.pkl": pickle.dumps({"a": _Evil()}, protocol=2)})
    cases = {
        "global": (evil, r"__builtin__\.print"),
        "oversized": (dict(good, **{"data/0": good["data/0"][:8]}), "declares 4 elements"),
        "missing-storage": ({k: v for k, v in good.items() if k != "data/0"}, "no record"),
        "byteorder": (dict(good, byteorder=b"middle"), "byteorder"),
        "version": (dict(good, version=b"99\n"), "version"),
        "no-pickle": ({"version": b"3\n"}, "data.pkl"),
    }
    for name, (records, message) in cases.items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(_zip(records).getvalue())
        with pytest.raises(optim.CheckpointFormatError, match=message) as info:
            optim.load(path)
        assert str(path) in str(info.value), name
        assert isinstance(info.value, ValueError)
    assert "pwned" not in capsys.readouterr().out
    # A view past the end of its storage (offset 3, 2 elements of a 4-element storage).
    pkl = good["data.pkl"]
    bad = pkl.replace(b"K\x00K\x04\x85", b"K\x03K\x02\x85")
    assert bad != pkl
    with pytest.raises(optim.CheckpointFormatError, match="past the end"):
        optim.load(_zip(dict(good, **{"data.pkl": bad})))
    raw = (tmp_path / "global.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(optim.CheckpointFormatError, match="cut.pt"):
        optim.load(tmp_path / "cut.pt")
    with pytest.raises(optim.CheckpointFormatError, match="not a zip"):
        optim.load(io.BytesIO(b"\x80\x02}q\x00."))


def test_save_refuses_what_torch_cannot_hold():
    with pytest.raises(TypeError, match=r"optim.save: obj\['f'\] is a builtin_function"):
        optim.save({"f": print}, io.BytesIO())
    with pytest.raises(TypeError, match=r"obj\['b'\] is a bytes"):  # optim.load could not read it
        optim.save({"b": b"x"}, io.BytesIO())
    with pytest.raises(TypeError, match="no torch storage type"):
        optim.save({"x": np.array(["a"])}, io.BytesIO())


def test_subclasses_of_builtins_are_saved_as_the_builtins(tmp_path):
    # Parameter names from named_parameters are a str subclass; torch's safe loader
    # refuses any global it does not know, so the file holds plain str, tuple, dict.
    from typing import NamedTuple

    class Point(NamedTuple):
        a: float
        b: float

    class Name(str):
        pass

    names = dict(optim.named_parameters({"w": np.ones(2)}))
    obj = {"model": names, Name("k"): Point(1.0, 2.0), "n": [Name("x")]}
    optim.save(obj, tmp_path / "f.pt")
    loaded = torch.load(tmp_path / "f.pt")  # torch's defaults
    assert list(loaded["model"]) == ["w"] and type(list(loaded["model"])[0]) is str
    assert loaded["k"] == (1.0, 2.0) and type(loaded["k"]) is tuple
    assert loaded["n"] == ["x"]


def test_state_dict_arrays_pickle_as_plain_numpy_outside_torch_save():
    # Only torch.save turns the state dict's arrays into tensors: pickle, copy and
    # NumPy see plain arrays, with the same values.
    opt = optim.Adam({"w": jnp.arange(3.0)}, lr=0.1)
    opt.backward(lambda p: jnp.sum(p["w"] ** 2))
    opt.step()
    sd = opt.state_dict()
    arr = sd["state"][0]["exp_avg"]
    assert isinstance(arr, np.ndarray)
    again = pickle.loads(pickle.dumps(sd))["state"][0]["exp_avg"]
    assert type(again) is np.ndarray
    np.testing.assert_array_equal(again, arr)
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    tensor = torch.load(buf)["state"][0]["exp_avg"]
    assert torch.is_tensor(tensor)
    np.testing.assert_array_equal(tensor.numpy(), arr)


@pytest.mark.parametrize("f", [5, None, [1]], ids=["int", "none", "list"])
def test_save_names_a_target_that_is_neither_path_nor_file(f):
    with pytest.raises(TypeError, match=r"^save: f must be a path \(str or os.PathLike\) or a"):
        optim.save({"state": {}, "param_groups": []}, f)
