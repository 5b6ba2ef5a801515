"""optimlab.optim.lr_scheduler against torch.optim.lr_scheduler, in lock-step on real optimizers."""

from __future__ import annotations

import io
import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as T

from optimlab import optim
from optimlab.optim import lr_scheduler as L

# The brief's bound: 1e-6 relative (torch's recursive forms drift by a few ulps per
# step). The absolute floor only matters where torch's recursion leaves ~1e-18 and the
# closed form an exact 0 (cosine minima with eta_min=0).
RTOL, ATOL = 1e-6, 1e-14
N = 150


def pair(kind="sgd"):
    """An optimlab optimizer and a torch one, two groups with different lr each."""
    tp = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    groups = [{"params": {"a": jnp.zeros(2)}}, {"params": {"b": jnp.zeros(2)}, "lr": 0.05}]
    tgroups = [{"params": [tp[0]]}, {"params": [tp[1]], "lr": 0.05}]
    if kind == "sgd":
        return (
            optim.SGD(groups, lr=0.1, momentum=0.9),
            torch.optim.SGD(tgroups, lr=0.1, momentum=0.9),
        )
    return optim.Adam(groups, lr=0.1), torch.optim.Adam(tgroups, lr=0.1)


def quiet(fn, *args):
    """torch warns on epoch arguments and on stepping before optimizer.step(); both sides."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args)


def check(so, st, oo, to, where):
    np.testing.assert_allclose(
        so.get_last_lr(), st.get_last_lr(), rtol=RTOL, atol=ATOL, err_msg=where
    )
    for go, gt in zip(oo.param_groups, to.param_groups, strict=True):
        assert isinstance(go["lr"], float), where
        for key in ("lr", "momentum", "betas", "initial_lr"):
            if key in gt:
                np.testing.assert_allclose(
                    go[key], gt[key], rtol=RTOL, atol=ATOL, err_msg=f"{where} {key}"
                )


def lockstep(so, st, oo, to, n=N, step=None, start=0):
    grads = [{"a": jnp.ones(2)}, {"b": jnp.ones(2)}]
    for k in range(start, start + n):
        check(so, st, oo, to, f"step {k}")
        oo.step(grads)
        to.step()
        if step is None:
            quiet(so.step)
            quiet(st.step)
        else:
            step(so, k)
            step(st, k)
    check(so, st, oo, to, "end")


def run(make, kind="sgd", n=N, step=None):
    oo, to = pair(kind)
    so, st = quiet(make, L, oo), quiet(make, T, to)
    lockstep(so, st, oo, to, n, step)
    return so, st, oo, to


CASES = {
    "LambdaLR-pow": lambda M, o: M.LambdaLR(o, lambda e: 0.95**e),
    "LambdaLR-per-group": lambda M, o: M.LambdaLR(
        o, [lambda e: 1 / (1 + e), lambda e: 0.9 ** (e // 10)]
    ),
    "MultiplicativeLR": lambda M, o: M.MultiplicativeLR(o, lambda e: 0.97),
    "MultiplicativeLR-per-group": lambda M, o: M.MultiplicativeLR(
        o, [lambda e: 0.99, lambda e: 1.0 - 0.001 * (e % 3)]
    ),
    "StepLR": lambda M, o: M.StepLR(o, 7, 0.5),
    "StepLR-30": lambda M, o: M.StepLR(o, 30),
    "MultiStepLR": lambda M, o: M.MultiStepLR(o, [10, 50, 50, 80], 0.5),
    "MultiStepLR-zero": lambda M, o: M.MultiStepLR(o, [0, 30], 0.3),
    "ConstantLR": lambda M, o: M.ConstantLR(o),
    "ConstantLR-40": lambda M, o: M.ConstantLR(o, 0.5, 40),
    "LinearLR": lambda M, o: M.LinearLR(o),
    "LinearLR-decay": lambda M, o: M.LinearLR(o, 1.0, 0.05, 80),
    "ExponentialLR": lambda M, o: M.ExponentialLR(o, 0.97),
    "ExponentialLR-up": lambda M, o: M.ExponentialLR(o, 1.01),
    "PolynomialLR": lambda M, o: M.PolynomialLR(o, 50, 2.0),
    "PolynomialLR-sqrt": lambda M, o: M.PolynomialLR(o, 120, 0.5),
    "CosineAnnealingLR": lambda M, o: M.CosineAnnealingLR(o, 100),
    "CosineAnnealingLR-past-T": lambda M, o: M.CosineAnnealingLR(o, 30, 0.001),
    "CAWR": lambda M, o: M.CosineAnnealingWarmRestarts(o, 10),
    "CAWR-x2": lambda M, o: M.CosineAnnealingWarmRestarts(o, 5, 2, 1e-3),
    "CyclicLR": lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=20),
    "CyclicLR-exp_range": lambda M, o: M.CyclicLR(
        o, 0.01, [0.1, 0.2], 12, 8, mode="exp_range", gamma=0.99
    ),
    "CyclicLR-triangular2-no-momentum": lambda M, o: M.CyclicLR(
        o, [0.01, 0.02], 0.1, 15, 25, mode="triangular2", cycle_momentum=False
    ),
    "OneCycleLR": lambda M, o: M.OneCycleLR(o, 0.1, N),
    "OneCycleLR-three-phase": lambda M, o: M.OneCycleLR(
        o,
        [0.1, 0.3],
        epochs=10,
        steps_per_epoch=15,
        three_phase=True,
        anneal_strategy="linear",
        base_momentum=0.8,
        max_momentum=[0.9, 0.95],
    ),
    "SequentialLR": lambda M, o: M.SequentialLR(
        o, [M.LinearLR(o, 0.1, total_iters=10), M.CosineAnnealingLR(o, 30, 0.01)], [10]
    ),
    "SequentialLR-three": lambda M, o: M.SequentialLR(
        o, [M.ConstantLR(o, 0.5, 3), M.ExponentialLR(o, 0.95), M.StepLR(o, 5)], [5, 60]
    ),
    "ChainedScheduler": lambda M, o: M.ChainedScheduler(
        [M.ConstantLR(o, 0.1, 20), M.ExponentialLR(o, 0.98)]
    ),
    "ChainedScheduler-affine": lambda M, o: M.ChainedScheduler(
        [M.MultiStepLR(o, [20, 70]), M.CosineAnnealingLR(o, 25, 0.001), M.ConstantLR(o, 0.2, 10)]
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_lockstep_with_torch(name):
    run(CASES[name])


@pytest.mark.parametrize(
    "name", ["CyclicLR", "CyclicLR-exp_range", "OneCycleLR", "OneCycleLR-three-phase"]
)
def test_momentum_cycling_on_adam_betas(name):
    so, st, oo, to = run(CASES[name], kind="adam")
    assert oo.param_groups[0]["betas"][1] == 0.999
    assert "momentum" not in oo.param_groups[0]


def test_cawr_fractional_epochs_interleaved():
    def step(s, k):
        quiet(s.step, k / 10 * 3.7) if k % 3 else quiet(s.step)

    run(CASES["CAWR-x2"], step=step)


def test_epoch_argument_uses_the_closed_form():
    def step(s, k):
        quiet(s.step, (7 * k) % 50)

    for name in ("StepLR", "CosineAnnealingLR-past-T", "LinearLR-decay", "PolynomialLR"):
        run(CASES[name], n=100, step=step)
    oo, _ = pair()
    s = L.StepLR(oo, 3)
    with pytest.warns(UserWarning, match="epoch parameter"):
        s.step(5)


@pytest.mark.parametrize(
    "first,second",
    [
        (lambda M, o: M.StepLR(o, 7, 0.5), lambda M, o: M.ExponentialLR(o, 0.98)),
        (
            lambda M, o: M.LinearLR(o, 0.1, total_iters=15),
            lambda M, o: M.CosineAnnealingLR(o, 40, 0.002),
        ),
        (lambda M, o: M.ConstantLR(o, 0.3, 12), lambda M, o: M.PolynomialLR(o, 90, 1.5)),
    ],
)
def test_two_schedulers_stacked_on_one_optimizer(first, second):
    oo, to = pair()
    so = [quiet(first, L, oo), quiet(second, L, oo)]
    st = [quiet(first, T, to), quiet(second, T, to)]

    class Both:
        def __init__(self, s):
            self.s = s

        def step(self):
            for x in self.s:
                x.step()

        def get_last_lr(self):
            return self.s[-1].get_last_lr()

    lockstep(Both(so), Both(st), oo, to)


@pytest.mark.parametrize(
    "name",
    [
        "StepLR",
        "MultiStepLR",
        "ConstantLR-40",
        "LinearLR-decay",
        "ExponentialLR",
        "PolynomialLR",
        "CosineAnnealingLR-past-T",
        "CAWR-x2",
        "CyclicLR",
        "OneCycleLR",
        "LambdaLR-pow",
    ],
)
def test_last_epoch_resumption(name):
    # Resume as torch documents: a new scheduler with last_epoch on the optimizer that
    # holds the run's state (initial_lr and the current lr in its groups).
    oo, to = pair()
    so, st = quiet(CASES[name], L, oo), quiet(CASES[name], T, to)
    lockstep(so, st, oo, to, n=37)
    make = CASES[name]

    def resumed(M, o, last):
        return quiet(lambda: _with_last_epoch(make, M, o, last))

    so2, st2 = resumed(L, oo, so.last_epoch), resumed(T, to, st.last_epoch)
    assert so2.last_epoch == st2.last_epoch == 38
    lockstep(so2, st2, oo, to, n=100)


def _with_last_epoch(make, M, o, last):
    """Rebuilds ``make``'s scheduler with ``last_epoch=last`` by wrapping the class."""

    class Proxy:
        def __getattr__(self, name):
            cls = getattr(M, name)
            return lambda *a, **k: cls(*a, **{**k, "last_epoch": last})

    return make(Proxy(), o)


def test_reduce_lr_on_plateau_same_metrics_with_nan():
    rng = np.random.default_rng(0)
    metrics = list(np.maximum(1.0 - 0.01 * np.arange(120), 0.3) + 0.02 * rng.normal(size=120))
    metrics[5] = metrics[40] = metrics[41] = math.nan
    for kw in (
        {"patience": 3, "cooldown": 2, "factor": 0.5},
        {
            "mode": "max",
            "threshold_mode": "abs",
            "threshold": 0.01,
            "patience": 2,
            "min_lr": [0.01, 0.002],
            "factor": 0.7,
            "eps": 1e-4,
        },
    ):
        seq = metrics if kw.get("mode") != "max" else [-m for m in metrics]

        def step(s, k, seq=seq):
            s.step(seq[k])

        so, st, oo, to = run(lambda M, o, kw=kw: M.ReduceLROnPlateau(o, **kw), n=120, step=step)
        assert so.state_dict().keys() == st.state_dict().keys()
        assert so.num_bad_epochs == st.num_bad_epochs and so.best == st.best
    assert st.get_last_lr()[0] < 0.1  # the sequence does trigger reductions


def roundtrip(sd):
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


INTEROP = [
    "StepLR",
    "MultiStepLR",
    "LambdaLR-pow",
    "CosineAnnealingLR-past-T",
    "CAWR-x2",
    "CyclicLR",
    "OneCycleLR",
    "SequentialLR",
    "ChainedScheduler",
    "LinearLR-decay",
]


@pytest.mark.parametrize("name", INTEROP)
def test_state_dict_torch_to_optimlab(name):
    oo, to = pair()
    st = quiet(CASES[name], T, to)
    for _ in range(23):
        to.step()
        quiet(st.step)
    so = quiet(CASES[name], L, oo)
    assert list(so.state_dict()) == list(st.state_dict())
    so.load_state_dict(roundtrip(st.state_dict()))
    for go, gt in zip(oo.param_groups, to.param_groups, strict=True):  # the optimizer's part
        go.update({k: v for k, v in gt.items() if k != "params"})
    lockstep(so, st, oo, to, n=100)


@pytest.mark.parametrize("name", INTEROP)
def test_state_dict_optimlab_to_torch(name):
    oo, to = pair()
    so = quiet(CASES[name], L, oo)
    for _ in range(23):
        quiet(so.step)
    st = quiet(CASES[name], T, to)
    st.load_state_dict(roundtrip(so.state_dict()))
    for go, gt in zip(oo.param_groups, to.param_groups, strict=True):
        gt.update({k: v for k, v in go.items() if k not in ("params", "param_names")})
    lockstep(so, st, oo, to, n=100)


def test_plateau_state_dict_both_ways():
    oo, to = pair()
    so, st = L.ReduceLROnPlateau(oo, patience=1), T.ReduceLROnPlateau(to, patience=1)
    for m in [1.0, 0.9, 0.95, 0.97, 0.99]:
        so.step(m)
        st.step(m)
    fresh = L.ReduceLROnPlateau(pair()[0])
    fresh.load_state_dict(roundtrip(st.state_dict()))
    assert fresh.state_dict() == st.state_dict()
    back = T.ReduceLROnPlateau(pair()[1])
    back.load_state_dict(roundtrip(so.state_dict()))
    assert back.state_dict() == so.state_dict()


def test_step_lr_epoch_loop_idiom_trains_like_torch():
    # scheduler = StepLR(optimizer, step_size=3, gamma=0.5)
    # for epoch in range(n): for batch: zero_grad, loss.backward, step; scheduler.step()
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(32, 3)), rng.normal(size=32)
    w0 = rng.normal(size=3)
    tw = torch.tensor(w0, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.1, momentum=0.9)
    tsched = T.StepLR(topt, step_size=3, gamma=0.5)
    opt = optim.SGD({"w": jnp.asarray(w0, jnp.float32)}, lr=0.1, momentum=0.9)
    sched = L.StepLR(opt, step_size=3, gamma=0.5)

    def loss_fn(p, xb, yb):
        return jnp.mean((xb @ p["w"] - yb) ** 2)

    for _epoch in range(10):
        for b in range(4):
            xb, yb = x[8 * b : 8 * b + 8], y[8 * b : 8 * b + 8]
            topt.zero_grad()
            torch.mean((torch.as_tensor(xb) @ tw - torch.as_tensor(yb)) ** 2).backward()
            topt.step()
            opt.zero_grad()
            opt.backward(loss_fn, jnp.asarray(xb, jnp.float32), jnp.asarray(yb, jnp.float32))
            opt.step()
        tsched.step()
        sched.step()
        assert sched.get_last_lr() == tsched.get_last_lr()
    np.testing.assert_allclose(np.asarray(opt.params["w"]), tw.detach().numpy(), rtol=1e-5)


def test_an_optimizer_stepped_100_times_under_a_scheduler_compiles_once():
    from optimlab.optim._step import update as _jit_update

    opt = optim.SGD({"w": jnp.zeros(7), "b": jnp.zeros(())}, lr=0.1, momentum=0.9)
    sched = L.OneCycleLR(opt, max_lr=0.5, total_steps=100)
    grads = {"w": jnp.ones(7), "b": jnp.ones(())}
    opt.step(grads)
    sched.step()
    compiled = _jit_update._cache_size()
    for _ in range(99):
        opt.step(grads)
        sched.step()
    assert _jit_update._cache_size() == compiled
    assert opt.param_groups[0]["momentum"] != 0.95  # the momentum did cycle


def test_errors_and_messages_follow_torch():
    oo, _ = pair()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        L.StepLR(object(), 3)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="initial_lr"):
        L.StepLR(oo, 3, last_epoch=4)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        L.LambdaLR(oo, [lambda e: 1.0])
    with pytest.raises(ValueError, match="Constant multiplicative factor"):
        L.ConstantLR(oo, 1.5)
    with pytest.raises(ValueError, match="Expected positive integer T_0"):
        L.CosineAnnealingWarmRestarts(oo, 0)
    with pytest.raises(ValueError, match="mode is invalid"):
        L.CyclicLR(oo, 0.01, 0.1, mode="sine")
    with pytest.raises(ValueError, match="must define either total_steps"):
        L.OneCycleLR(oo, 0.1)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        L.ReduceLROnPlateau(oo, factor=1.0)
    plateau = L.ReduceLROnPlateau(oo)
    with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
        L.ChainedScheduler([L.StepLR(oo, 3), plateau])
    other, _ = pair()
    with pytest.raises(ValueError, match="same optimizer"):
        L.SequentialLR(oo, [L.StepLR(oo, 3), L.StepLR(other, 3)], [5])
    one = L.OneCycleLR(pair()[0], 0.1, total_steps=3)
    for _ in range(3):
        one.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        one.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        L.StepLR(pair()[0], 3).get_lr()


def _snapshot(sched):
    return sched.last_epoch, sched._step_count, [g["lr"] for g in sched.optimizer.param_groups]


@pytest.mark.parametrize(
    "epoch,exc,message",
    [
        ("1", TypeError, "epoch must be a real number, got str"),
        ([1], TypeError, "epoch must be a real number, got list"),
        (True, TypeError, "epoch must be a real number, got bool"),
        (None, None, ""),
        (float("nan"), ValueError, "epoch must be finite, got nan"),
        (float("inf"), ValueError, "epoch must be finite, got inf"),
    ],
)
@pytest.mark.parametrize(
    "make", [lambda o: L.StepLR(o, 1), lambda o: L.CosineAnnealingWarmRestarts(o, 2)]
)
def test_a_bad_epoch_is_refused_before_anything_changes(make, epoch, exc, message):
    sched = make(pair()[0])
    sched.step()
    before = _snapshot(sched)
    if exc is None:
        sched.step(epoch)
        return
    with pytest.raises(exc, match=message), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched.step(epoch)
    assert _snapshot(sched) == before
    sched.step()  # still steps


def test_a_bad_epoch_is_refused_by_reduce_lr_on_plateau():
    sched = L.ReduceLROnPlateau(pair()[0])
    with pytest.raises(TypeError, match="epoch must be a real number"):
        sched.step(1.0, epoch="3")
    assert sched.last_epoch == 0


@pytest.mark.parametrize("result", ["x", None, [1.0, 2.0]])
@pytest.mark.parametrize("cls", [L.LambdaLR, L.MultiplicativeLR])
def test_a_lambda_returning_no_number_changes_nothing(cls, result):
    def factor(epoch):
        return 1.0 if np.all(np.asarray(epoch) < 1) else result

    sched = cls(pair()[0], factor)
    before = _snapshot(sched)
    with pytest.raises(TypeError, match="lr_lambda of param group 0 must return a number"):
        sched.step()
    assert _snapshot(sched) == before


@pytest.mark.parametrize(
    "make,edit,exc,message",
    [
        (lambda o: L.StepLR(o, 1), {"last_epoch": "x"}, TypeError, "'last_epoch' must be a real"),
        (lambda o: L.StepLR(o, 1), {"last_epoch": math.nan}, ValueError, "must be finite"),
        (lambda o: L.StepLR(o, 1), {"base_lrs": [0.1]}, ValueError, "'base_lrs' has 1 values"),
        (lambda o: L.StepLR(o, 1), {"base_lrs": 0.1}, TypeError, "'base_lrs' must be a list"),
        (lambda o: L.StepLR(o, 1), {"step_size": 0}, ValueError, "step_size value: 0"),
        (lambda o: L.StepLR(o, 1), {"gamma": "x"}, TypeError, "gamma must be a real number"),
        (lambda o: L.StepLR(o, 1), {"_step_count": "1"}, TypeError, "'_step_count' must be an int"),
        (lambda o: L.ExponentialLR(o, 0.5), {"gamma": None}, TypeError, "gamma"),
        (lambda o: L.CosineAnnealingLR(o, 10), {"T_max": 0}, ValueError, "T_max"),
    ],
)
def test_a_bad_scheduler_state_dict_changes_nothing(make, edit, exc, message):
    sched = make(pair()[0])
    sched.step()
    before = sched.state_dict()
    with pytest.raises(exc, match=message):
        sched.load_state_dict({**before, **edit, "unknown": 1})
    assert sched.state_dict() == before
    sched.load_state_dict({**before, "unknown": 1})  # unknown keys are still ignored
    sched.step()


def test_cyclic_lr_refuses_a_zero_step_size_up():
    with pytest.raises(ZeroDivisionError):  # torch divides by it
        T.CyclicLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))]), 0.1, 1.0, step_size_up=0)
    with pytest.raises(ValueError, match="Invalid step_size_up value: 0 "):
        L.CyclicLR(pair()[0], 0.1, 1.0, step_size_up=0)
    with pytest.raises(ValueError, match="Invalid step_size_up value: 0 "):
        L.CyclicLR(pair()[0], 0.1, 1.0, step_size_up=0, step_size_down=4)
    sched = L.CyclicLR(pair()[0], 0.1, 1.0, step_size_up=2, step_size_down=0)  # as torch
    sched.step()
