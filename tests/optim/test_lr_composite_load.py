"""SequentialLR, ChainedScheduler and ReduceLROnPlateau refuse a damaged state dict.

Each case loads a state dict with one value spoiled: the load raises naming the
key, and the scheduler (with every scheduler it composes) is left as it was, so
the next step is the step it would have taken. torch loads all of these without
a word (it sets whatever it is given), so the comparison is with our own state.
"""

from __future__ import annotations

import copy
import math

import jax.numpy as jnp
import pytest

from optimlab import optim
from optimlab.optim import lr_scheduler as L


def _optimizer():
    return optim.SGD({"w": jnp.zeros(2)}, lr=1.0)


def _sequential():
    opt = _optimizer()
    warm = L.LinearLR(opt, start_factor=0.1, total_iters=2)
    return L.SequentialLR(opt, [warm, L.ExponentialLR(opt, gamma=0.5)], milestones=[2])


def _chained():
    opt = _optimizer()
    return L.ChainedScheduler([L.ConstantLR(opt, factor=0.5), L.ExponentialLR(opt, gamma=0.9)])


def _plateau():
    return L.ReduceLROnPlateau(_optimizer(), factor=0.5, patience=1)


def _step(sched):
    if isinstance(sched, L.ReduceLROnPlateau):
        sched.step(1.0)
    else:
        sched.step()


def _edit_sub(index, key, value):
    def edit(sd):
        sd["_schedulers"][index][key] = value

    return edit


def _set(key, value):
    def edit(sd):
        sd[key] = value

    return edit


def _first_fine_second_bad(sd):
    sd["_schedulers"][0]["last_epoch"] = 7  # a valid value, loaded first
    sd["_schedulers"][1]["gamma"] = "x"


def _drop_sub(sd):
    sd["_schedulers"] = sd["_schedulers"][:1]


CASES = [
    (_sequential, _set("_milestones", [2, 3]), ValueError, "'_milestones' must be a list of 1"),
    (_sequential, _set("_milestones", ["2"]), TypeError, r"'_milestones'\[0\] must be an int"),
    (_sequential, _set("_milestones", [-1]), ValueError, r"'_milestones'\[0\] must be >= 0"),
    (_sequential, _set("last_epoch", math.nan), ValueError, "'last_epoch' must be finite"),
    (_sequential, _set("_last_lr", [0.1, 0.2]), ValueError, "'_last_lr' has 2 values"),
    (_sequential, _drop_sub, ValueError, "'_schedulers' has 1 state dicts, this one composes 2"),
    (_sequential, _set("_schedulers", None), TypeError, "'_schedulers' must be a list of 2"),
    # A bad entry of the second scheduler: the first one, loaded before it, is put back.
    (_sequential, _first_fine_second_bad, TypeError, "gamma must be a real number"),
    (_chained, _edit_sub(1, "last_epoch", "x"), TypeError, "'last_epoch' must be a real"),
    (_chained, _set("_last_lr", "x"), TypeError, "'_last_lr' must be a list"),
    (_plateau, _set("factor", 1.5), ValueError, r"'factor' must be in \[0, 1\)"),
    (_plateau, _set("min_lrs", [-1.0]), ValueError, "'min_lrs' must be >= 0"),
    (_plateau, _set("factor", math.nan), ValueError, "'factor' must be finite"),
    (_plateau, _set("patience", 1.5), TypeError, "'patience' must be an int"),
    (_plateau, _set("cooldown_counter", -1), ValueError, "'cooldown_counter' must be >= 0"),
    (_plateau, _set("num_bad_epochs", "1"), TypeError, "'num_bad_epochs' must be an int"),
    (_plateau, _set("mode", "median"), ValueError, "mode median is unknown"),
    (_plateau, _set("mode", 3), TypeError, "'mode' must be a str"),
    (_plateau, _set("threshold_mode", "log"), ValueError, "threshold mode log is unknown"),
    (_plateau, _set("min_lrs", [0.0, 0.0]), ValueError, "'min_lrs' has 2 values"),
    (_plateau, _set("best", math.nan), ValueError, "'best' must be a real number"),
    (_plateau, _set("best", "1"), TypeError, "'best' must be a real number"),
    (_plateau, _set("eps", -1.0), ValueError, "'eps' must be >= 0"),
]


def _state(sched):
    subs = getattr(sched, "schedulers", [])
    groups = [g["lr"] for g in sched.optimizer.param_groups]
    return sched.state_dict(), [s.state_dict() for s in subs], groups


@pytest.mark.parametrize(
    "make,edit,exc,message",
    CASES,
    ids=[f"{c[0].__name__[1:]}-{c[3][:32]}" for c in CASES],
)
def test_a_damaged_state_dict_is_refused_and_changes_nothing(make, edit, exc, message):
    sched, twin = make(), make()
    _step(sched)
    _step(twin)
    before = _state(sched)
    bad = copy.deepcopy(sched.state_dict())
    edit(bad)
    name = type(sched).__name__
    with pytest.raises(exc, match=message) as info:
        sched.load_state_dict(bad)
    assert f"{name}.load_state_dict" in str(info.value) or "load_state_dict" in str(info.value)
    assert _state(sched) == before
    _step(sched)  # steps on as the twin, which never saw the bad load
    _step(twin)
    assert _state(sched) == _state(twin)


@pytest.mark.parametrize("make", [_sequential, _chained, _plateau])
def test_its_own_state_dict_still_loads(make):
    sched, other = make(), make()
    for _ in range(3):
        _step(sched)
    # As in torch, the lrs themselves travel in the optimizer's state dict.
    other.optimizer.load_state_dict(sched.optimizer.state_dict())
    other.load_state_dict(copy.deepcopy(sched.state_dict()))
    assert _state(other) == _state(sched)
    for _ in range(2):
        _step(sched)
        _step(other)
    assert _state(other) == _state(sched)
    assert math.isfinite(other.get_last_lr()[0])


@pytest.mark.parametrize(
    "kwargs,exc,message",
    [
        ({"patience": -1}, ValueError, "'patience' must be >= 0"),
        ({"patience": 1.5}, TypeError, "'patience' must be an int"),
        ({"cooldown": "x"}, TypeError, "'cooldown' must be an int"),
        ({"eps": -1.0}, ValueError, "'eps' must be >= 0"),
        ({"threshold": math.nan}, ValueError, "'threshold' must be finite"),
        ({"min_lr": -1.0}, ValueError, "'min_lrs' must be >= 0"),
        ({"min_lr": "x"}, TypeError, "'default_min_lr' must be a real number"),
        ({"min_lr": [math.nan]}, ValueError, r"'min_lrs'\[0\] must be finite"),
        ({"factor": "x"}, TypeError, "factor must be a real number"),
        ({"factor": -0.5}, ValueError, r"'factor' must be in \[0, 1\)"),
        ({"factor": 1.0}, ValueError, r"^Factor should be < 1.0.$"),  # torch's words
        ({"mode": 3}, ValueError, "mode 3 is unknown!"),
    ],
)
def test_reduce_lr_on_plateau_refuses_bad_options(kwargs, exc, message):
    with pytest.raises(exc, match=message) as info:
        L.ReduceLROnPlateau(_optimizer(), **kwargs)
    assert (
        "Factor" in str(info.value)
        or "mode" in str(info.value)
        or (str(info.value).startswith("ReduceLROnPlateau: "))
    )
