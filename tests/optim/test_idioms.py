"""torch.optim idioms ported as they are written, against torch on real losses."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from optimlab import optim
from optimlab.optim import _buckets

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 3))
Y = RNG.normal(size=(16, 2))
INIT = {
    "body": RNG.normal(size=(3, 4)),
    "head": RNG.normal(size=(4, 2)),
    "bias": RNG.normal(size=2),
}


def loss_fn(p, x, y):
    h = jnp.tanh(x @ p["body"])
    return jnp.mean((h @ p["head"] + p["bias"] - y) ** 2)


def torch_loss(p, x, y):
    h = torch.tanh(torch.as_tensor(x) @ p["body"])
    return torch.mean((h @ p["head"] + p["bias"] - torch.as_tensor(y)) ** 2)


def torch_params():
    return {k: torch.tensor(v, requires_grad=True) for k, v in INIT.items()}


def jax_params():
    return {k: jnp.asarray(v) for k, v in INIT.items()}


def assert_close(tree, tparams, rtol=1e-10):
    for k, t in tparams.items():
        np.testing.assert_allclose(
            np.asarray(tree[k]), t.detach().numpy(), rtol=rtol, atol=1e-12, err_msg=k
        )


def test_two_groups_with_an_lr_override_and_momentum():
    # optim.SGD([{'params': model.base.parameters()},
    #            {'params': model.classifier.parameters(), 'lr': 1e-3}], lr=1e-2, momentum=0.9)
    with jax.enable_x64(True):
        tp = torch_params()
        topt = torch.optim.SGD(
            [{"params": [tp["body"]]}, {"params": [tp["head"], tp["bias"]], "lr": 1e-3}],
            lr=1e-2,
            momentum=0.9,
        )
        p = jax_params()
        opt = optim.SGD(
            [
                {"params": {"body": p["body"]}},
                {"params": {"head": p["head"], "bias": p["bias"]}, "lr": 1e-3},
            ],
            lr=1e-2,
            momentum=0.9,
        )

        def grouped_loss(groups, x, y):
            return loss_fn({**groups[0], **groups[1]}, x, y)

        for _ in range(5):
            topt.zero_grad()
            torch_loss(tp, X, Y).backward()
            topt.step()
            opt.zero_grad()
            opt.backward(grouped_loss, X, Y)
            opt.step()
        base, classifier = opt.params  # one tree per group
        assert_close({**base, **classifier}, tp)


def test_zero_grad_backward_step_loop_with_accumulation_and_lr_changes():
    with jax.enable_x64(True):
        tp = torch_params()
        topt = torch.optim.Adam(tp.values(), lr=0.05, weight_decay=0.01)
        opt = optim.Adam(jax_params(), lr=0.05, weight_decay=0.01)
        for epoch in range(4):
            for g, tg in zip(opt.param_groups, topt.param_groups, strict=True):
                g["lr"] = tg["lr"] = 0.05 / (1 + epoch)
            topt.zero_grad()
            opt.zero_grad()
            for half in (slice(0, 8), slice(8, 16)):  # two micro-batches accumulate
                torch_loss(tp, X[half], Y[half]).backward()
                loss = opt.backward(loss_fn, X[half], Y[half])
            np.testing.assert_allclose(float(loss), torch_loss(tp, X[8:], Y[8:]).item(), rtol=1e-12)
            topt.step()
            opt.step()
            assert_close(opt.params, tp)
        assert opt._grad_fns[loss_fn]._cache_size() == 1


def test_zero_grad_without_set_to_none_still_steps():
    # torch: a zero gradient is applied (momentum keeps moving), None is skipped.
    with jax.enable_x64(True):
        tp = torch_params()
        topt = torch.optim.SGD(tp.values(), lr=0.1, momentum=0.9)
        opt = optim.SGD(jax_params(), lr=0.1, momentum=0.9)
        for set_to_none in (False, False, True, False):
            torch_loss(tp, X, Y).backward()
            opt.backward(loss_fn, X, Y)
            topt.step()
            opt.step()
            topt.zero_grad(set_to_none=set_to_none)
            opt.zero_grad(set_to_none=set_to_none)
            topt.step()
            opt.step()
            assert_close(opt.params, tp)
        assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(opt.grads))
        opt.zero_grad()
        assert jax.tree.leaves(opt.grads) == []  # None leaves: the next step() skips all


def test_step_with_a_closure():
    with jax.enable_x64(True):
        tp = torch_params()
        topt = torch.optim.AdamW(tp.values(), lr=0.02)
        opt = optim.AdamW(jax_params(), lr=0.02)

        def closure():
            topt.zero_grad()
            loss = torch_loss(tp, X, Y)
            loss.backward()
            return loss

        def our_closure(params):
            return loss_fn(params, X, Y)

        for _ in range(4):
            tl = topt.step(closure)
            ol = opt.step(our_closure)
            np.testing.assert_allclose(float(ol), tl.item(), rtol=1e-12)
            assert_close(opt.params, tp)
        np.testing.assert_allclose(
            np.asarray(opt.grads["bias"]), tp["bias"].grad.numpy(), rtol=1e-10
        )


def test_add_param_group_to_unfreeze_a_layer():
    # Train the head first, then unfreeze the body with a smaller lr. optim.params
    # is the whole tree all along; the frozen body stays as given.
    with jax.enable_x64(True):
        tp = torch_params()
        topt = torch.optim.SGD([tp["head"], tp["bias"]], lr=0.1, momentum=0.9)
        p = jax_params()
        opt = optim.SGD(
            [(n, x) for n, x in optim.named_parameters(p) if n != "body"], lr=0.1, momentum=0.9
        )
        for step in range(6):
            if step == 3:
                topt.add_param_group({"params": [tp["body"]], "lr": 0.01})
                opt.add_param_group(
                    {
                        "params": [(n, x) for n, x in optim.named_parameters(p) if n == "body"],
                        "lr": 0.01,
                    }
                )
            topt.zero_grad()
            torch_loss(tp, X, Y).backward()
            topt.step()
            opt.zero_grad()
            opt.backward(loss_fn, X, Y)
            opt.step()
            assert set(opt.params) == {"body", "head", "bias"}
            assert_close(opt.params, tp)
            if step < 3:
                assert opt.params["body"] is p["body"]
        assert opt.state_dict()["param_groups"][1]["param_names"] == ["body"]


def test_per_step_lr_changes_compile_once():
    opt = optim.Adam({"w": jnp.ones((7, 3)), "b": jnp.ones(7)}, lr=0.1, weight_decay=0.01)
    from optimlab.optim._step import update as _jit_update

    grads = {"w": jnp.full((7, 3), 0.5), "b": jnp.full(7, 0.5)}
    opt.step(grads)
    compiled = _jit_update._cache_size()
    for k in range(100):
        opt.param_groups[0]["lr"] = 0.1 / (k + 1)
        opt.param_groups[0]["betas"] = (0.9 - k / 1000, 0.999)
        opt.param_groups[0]["weight_decay"] = 0.01 * (k + 1)
        opt.step(grads)
    assert _jit_update._cache_size() == compiled
    assert float(opt.state[0]["step"]) == 101.0


def test_params_structure_and_inputs_are_not_donated():
    p = jax_params()
    opt = optim.SGD(p, lr=0.1)
    opt.step({k: jnp.ones_like(v) for k, v in p.items()})
    assert not p["body"].is_deleted()  # given arrays are copied, never donated
    np.testing.assert_allclose(np.asarray(opt.params["body"]), INIT["body"] - 0.1)
    pairs = optim.SGD([("a", jnp.ones(2)), ("b", jnp.ones(1))], lr=0.1)
    assert list(pairs.params) == ["a", "b"]  # user-made names: a {name: array} dict
    grouped = optim.SGD([{"params": [jnp.ones(2)]}, {"params": {"x": jnp.ones(1)}}], lr=0.1)
    assert isinstance(grouped.params, list) and set(grouped.params[1]) == {"x"}


@pytest.mark.parametrize("prepend", [False, True])
def test_hooks_run_in_torch_order_and_are_removable(prepend):
    opt = optim.SGD({"w": jnp.ones(2)}, lr=0.1, momentum=0.9)
    calls = []
    handles = [
        opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", len(a)))),
        opt.register_step_post_hook(lambda o, a, k: calls.append(("post", len(a)))),
        opt.register_state_dict_pre_hook(lambda o: calls.append("sd-pre")),
        opt.register_state_dict_post_hook(lambda o, sd: calls.append("sd-post")),
        opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1}),
        opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append("load-pre")),
        opt.register_load_state_dict_post_hook(lambda o: calls.append("load-post")),
        opt.register_load_state_dict_pre_hook(
            lambda o, sd: calls.append("load-pre-0"), prepend=prepend
        ),
    ]
    opt.step({"w": jnp.ones(2)})
    sd = opt.state_dict()
    assert sd["extra"] == 1
    opt.load_state_dict(sd)
    first = ["load-pre-0", "load-pre"] if prepend else ["load-pre", "load-pre-0"]
    assert calls == [("pre", 1), ("post", 1), "sd-pre", "sd-post", *first, "load-post"]
    for h in handles:
        h.remove()
    calls.clear()
    opt.step({"w": jnp.ones(2)})
    opt.load_state_dict(opt.state_dict())
    assert calls == [] and "extra" not in opt.state_dict()


def test_step_pre_hook_can_replace_the_gradients():
    opt = optim.SGD({"w": jnp.ones(2)}, lr=0.5)
    opt.register_step_pre_hook(lambda o, args, kwargs: (({"w": jnp.full(2, 2.0)},), kwargs))
    opt.step({"w": jnp.ones(2)})
    np.testing.assert_allclose(np.asarray(opt.params["w"]), 0.0)


def test_load_state_dict_pre_hook_may_rewrite_the_dict():
    opt = optim.SGD({"w": jnp.ones(2)}, lr=0.1)
    sd = opt.state_dict()
    opt.register_load_state_dict_pre_hook(
        lambda o, d: {**d, "param_groups": [{**d["param_groups"][0], "lr": 0.7}]}
    )
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.7 and sd["param_groups"][0]["lr"] == 0.1


#: Every class with torch's ``foreach`` flag, and options that change its arithmetic.
FOREACH_CASES = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"momentum": 0.9, "dampening": 0.3, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {}),
    ("Adamax", {"weight_decay": 0.1}),
    ("RAdam", {}),
    ("RAdam", {"decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("NAdam", {}),
    ("RMSprop", {"centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("Adagrad", {"lr_decay": 0.1, "initial_accumulator_value": 0.2}),
    ("Adadelta", {"weight_decay": 0.1}),
    ("Rprop", {}),
    ("ASGD", {}),
    ("Adafactor", {}),
]


def _run_foreach(cls, kwargs, foreach, dtype, large):
    params = {
        "a": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3),
        "b": jnp.linspace(0.5, 2.0, 6).reshape(2, 3),
        "c": jnp.linspace(-2.0, 0.5, 4),
        "d": jnp.linspace(-0.3, 0.9, 37),  # not a multiple of any vector width
        "e": jnp.linspace(-1.0, 1.0, large).reshape(100, -1),  # left out of the buckets
    }
    params = jax.tree.map(lambda x: x.astype(dtype), params)
    opt = getattr(optim, cls)(params, foreach=foreach, **{"lr": 0.01, **kwargs})
    bucketed = False
    for k in range(8):
        grads = jax.tree.map(lambda p, k=k: jnp.cos(p * (k + 1)), opt.params)
        if k in (2, 3):
            grads["c"] = None  # torch skips it: the others step as a list, not bucketed
        if k == 4:
            opt.param_groups[0]["lr"] = 0.02
        opt.step(grads)
        bucketed = bucketed or any(g.bucket is not None for g in opt._store.groups)
        if k == 5:
            opt.load_state_dict(opt.state_dict())
    sd = opt.state_dict()["state"]
    return [np.asarray(x) for x in jax.tree.leaves((opt.params, sd))], bucketed, sd


@pytest.mark.parametrize(
    ("cls", "kwargs", "dtype", "large"),
    [(cls, kwargs, "float32", 20000) for cls, kwargs in FOREACH_CASES]
    + [(cls, {}, "bfloat16", 20000) for cls in ("SGD", "Adam", "RMSprop", "NAdam")]
    # Five parameters of 100,000 elements in all: too large on average to hoist.
    + [(cls, {}, "float32", 100000) for cls in ("Adam", "RAdam", "Adagrad")],
    ids=str,
)
def test_foreach_none_and_false_step_the_same_bits(cls, kwargs, dtype, large, monkeypatch):
    """torch's foreach=None (packed or multi-tensor) and foreach=False (a loop): one result.

    Bit for bit, not to an ulp: through a packed group, a group stepped as a list
    (a parameter without a gradient), a large parameter beside the packed ones, a
    changed option and a reload. The packed form adds each update to its parameter
    in the kernel that computes it, and each step decides once, from all its
    parameters, whether to hoist its scalars, so XLA emits the same arithmetic
    (FMA contractions included) for each element either way.
    """
    monkeypatch.setattr(_buckets, "MIN_PARAMS", 2)  # bucket a group of five parameters
    packed, bucketed, sd = _run_foreach(cls, kwargs, None, dtype, large)
    plain, _, _ = _run_foreach(cls, kwargs, False, dtype, large)
    # Classes whose state holds a value shared by the group (NAdam's momentum
    # product, ASGD's averages) or per-parameter statistics (Adafactor) step one
    # parameter at a time either way.
    assert bucketed == (cls not in ("NAdam", "ASGD", "Adafactor"))
    if "step" in sd.get(0, {}):
        assert float(sd[2]["step"]) == 6.0 and float(sd[0]["step"]) == 8.0
    for i, (a, b) in enumerate(zip(packed, plain, strict=True)):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), f"leaf {i}"
