"""Every error path of optimlab.optim, with torch's message where torch has one, and
``load_state_dict`` leaving the optimizer unchanged when it raises."""

from __future__ import annotations

import copy
import re

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from optimlab import optim


def tree():
    return {"b": jnp.ones(2), "w": jnp.ones((2, 3))}


@pytest.mark.parametrize(
    "cls,kwargs,message",
    [
        (optim.SGD, dict(lr=-0.1), "Invalid learning rate: -0.1"),
        (optim.SGD, dict(momentum=-0.5), "Invalid momentum value: -0.5"),
        (optim.SGD, dict(weight_decay=-0.5), "Invalid weight_decay value: -0.5"),
        (
            optim.SGD,
            dict(nesterov=True),
            "Nesterov momentum requires a momentum and zero dampening",
        ),
        (
            optim.SGD,
            dict(nesterov=True, momentum=0.9, dampening=0.1),
            "Nesterov momentum requires a momentum and zero dampening",
        ),
        (optim.Adam, dict(lr=-0.1), "Invalid learning rate: -0.1"),
        (optim.Adam, dict(eps=-0.5), "Invalid epsilon value: -0.5"),
        (optim.Adam, dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
        (optim.AdamW, dict(betas=(0.9, -0.5)), "Invalid beta parameter at index 1: -0.5"),
        (optim.AdamW, dict(weight_decay=-0.5), "Invalid weight_decay value: -0.5"),
    ],
)
def test_invalid_options_raise_torch_messages(cls, kwargs, message):
    theirs = getattr(torch.optim, cls.__name__)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        theirs([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        cls(tree(), **kwargs)


def test_group_overrides_are_validated_too():
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        optim.SGD([{"params": tree()}, {"params": [jnp.ones(1)], "lr": -1.0}], lr=0.1)


@pytest.mark.parametrize("params", [[], {}, iter([])], ids=["list", "empty-tree", "iterator"])
def test_empty_parameter_list(params):
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        optim.SGD(params)


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_none_params_is_a_type_error_as_in_torch(cls):
    with pytest.raises(TypeError):
        getattr(torch.optim, cls.__name__)(None)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts, but got None"):
        cls(None)
    opt = cls([jnp.ones(2)], lr=0.1)
    with pytest.raises(TypeError):
        getattr(torch.optim, cls.__name__)([torch.zeros(1, requires_grad=True)]).add_param_group(
            {"params": None}
        )
    with pytest.raises(TypeError, match="'params' is None"):
        opt.add_param_group({"params": None})
    with pytest.raises(TypeError, match="'params' is None"):
        cls([{"params": None}], lr=0.1)
    assert len(opt.param_groups) == 1


def test_add_param_group_checks():
    opt = optim.SGD([{"params": tree()}], lr=0.1)
    before = copy.deepcopy(opt.param_groups)
    with pytest.raises(
        TypeError, match=re.escape("param_group must be a dict, but got <class 'list'>")
    ):
        opt.add_param_group([jnp.ones(2)])
    with pytest.raises(TypeError, match="ordered collections, but the ordering of tensors in sets"):
        opt.add_param_group({"params": {1.0}})
    with pytest.raises(
        TypeError, match="optimizer can only optimize arrays, but one of the params is str"
    ):
        opt.add_param_group({"params": ["abc"]})
    with pytest.raises(
        TypeError, match="floating-point arrays, but one of the params has dtype int32"
    ):
        opt.add_param_group({"params": [jnp.ones(2, jnp.int32)]})
    with pytest.raises(
        ValueError,
        match="^all optimizer param groups should be with/without names. "
        "cannot add param group with names to the optimizer$",
    ):
        opt.add_param_group({"params": [("x", jnp.ones(2))]})
    with pytest.raises(KeyError, match="params"):
        opt.add_param_group({"lr": 0.1})
    assert opt.param_groups == before and len(opt._store.params) == 2


def test_overlapping_groups_are_refused():
    t = tree()
    with pytest.raises(
        ValueError, match="^some parameters appear in more than one parameter group$"
    ):
        optim.SGD([{"params": t}, {"params": [t["w"]]}], lr=0.1)
    named = list(optim.named_parameters(t))
    opt = optim.SGD([{"params": named[:1]}], lr=0.1)
    with pytest.raises(
        ValueError, match="^some parameters appear in more than one parameter group$"
    ):
        opt.add_param_group({"params": list(optim.named_parameters(t)), "lr": 0.01})
    opt.add_param_group({"params": named[1:], "lr": 0.01})  # the rest is fine
    assert [g["param_names"] for g in opt.param_groups] == [["b"], ["w"]]


def test_names_on_some_params_only():
    with pytest.raises(
        ValueError,
        match="^all optimizer params should be with/without names. Some param names are missing$",
    ):
        optim.SGD([{"params": [("a", jnp.ones(2)), jnp.ones(2)]}], lr=0.1)


def test_required_option_missing():
    opt = optim.SGD([{"params": tree(), "lr": 0.1}], lr=optim.required)
    with pytest.raises(
        ValueError,
        match="^parameter group didn't specify a value of required optimization parameter lr$",
    ):
        opt.add_param_group({"params": [jnp.ones(2)]})


def test_duplicate_parameters_in_a_group_warn_as_torch():
    pairs = list(optim.named_parameters(tree()))
    with pytest.warns(UserWarning, match="optimizer contains a parameter group with duplicate"):
        optim.SGD(pairs + pairs[:1], lr=0.1)


def test_gradients_of_the_wrong_shape_or_structure():
    opt = optim.SGD(tree(), lr=0.1)
    with pytest.raises(ValueError, match=r"the gradient of parameter 1 \('w'\) has shape \(3,\)"):
        opt.step({"b": jnp.ones(2), "w": jnp.ones(3)})
    with pytest.raises(ValueError, match="the gradients' structure differs"):
        opt.step({"b": jnp.ones(2)})
    grouped = optim.SGD([{"params": tree()}, {"params": [jnp.ones(1)]}], lr=0.1)
    with pytest.raises(ValueError, match="expected a list of 2 trees, one per group"):
        grouped.step(tree())


def _two_groups():
    return optim.SGD([{"params": [jnp.ones(2)]}, {"params": [jnp.ones(3)], "lr": 0.2}], lr=0.1)


def _set(i, key, value):
    return lambda groups: groups[i].__setitem__(key, value)


GROUP_EDITS = [
    (
        "appended_dict",
        lambda g: g.append({"params": [jnp.ones(1)], "lr": 0.1}),
        ValueError,
        r"param_groups holds 3 group\(s\), but the optimizer has 2: add groups with add_param",
    ),
    ("removed", lambda g: g.pop(), ValueError, r"holds 1 group\(s\), but the optimizer has 2"),
    (
        "reordered",
        lambda g: g.reverse(),
        ValueError,
        r"param_groups\[0\]\['params'\] was changed to \[1\]; it lists the indices .*, \[0\]",
    ),
    ("params_emptied", _set(1, "params", []), ValueError, r"param_groups\[1\]\['params'\] was"),
    (
        "params_as_arrays",
        _set(0, "params", [jnp.ones(2)]),
        ValueError,
        r"was changed to \[Array\(.*read values from opt.params",
    ),
    ("replaced_by_a_list", _set(0, "params", None), ValueError, r"was changed to None"),
    (
        "option_deleted",
        lambda g: g[1].pop("lr"),
        KeyError,
        r"param_groups\[1\] has no 'lr' option \(deleted\?\); set it again",
    ),
]


@pytest.mark.parametrize(
    "edit,exc,message", [e[1:] for e in GROUP_EDITS], ids=[e[0] for e in GROUP_EDITS]
)
@pytest.mark.parametrize("call", ["step", "state_dict", "load_state_dict"])
def test_param_groups_edited_beyond_option_values_are_refused(edit, exc, message, call):
    """Only option values may change in ``param_groups``; any other edit is refused by
    the next step, state read or load, naming the group, not ignored (the old
    parameters stepped) or failing later with an IndexError."""
    opt = _two_groups()
    saved = opt.state_dict()
    edit(opt.param_groups)
    run = {
        "step": lambda: opt.step([[jnp.ones(2)], [jnp.ones(3)]]),
        "state_dict": opt.state_dict,
        "load_state_dict": lambda: opt.load_state_dict(saved),
    }[call]
    with pytest.raises(exc, match=message):
        run()


def test_step_pre_hook_must_return_args_and_kwargs():
    opt = optim.SGD(tree(), lr=0.1)
    opt.register_step_pre_hook(lambda o, a, k: "nonsense")
    with pytest.raises(
        RuntimeError, match=r"must return None or a tuple of \(new_args, new_kwargs\)"
    ):
        opt.step()


# ------------------------------------------------------------- load_state_dict
def _trained(cls=optim.Adam, **kwargs):
    opt = cls([{"params": tree()}, {"params": [jnp.ones(4)], "lr": 0.01}], lr=0.1, **kwargs)
    opt.step([{"b": jnp.ones(2), "w": jnp.ones((2, 3))}, [jnp.ones(4)]])
    return opt


def _twin(opt):
    return torch.optim.Adam(
        [
            {"params": [torch.zeros(2, requires_grad=True), torch.zeros(2, 3, requires_grad=True)]},
            {"params": [torch.zeros(4, requires_grad=True)]},
        ]
    )


def _bad(edit):
    def make(sd):
        sd = copy.deepcopy(sd)
        edit(sd)
        return sd

    return make


BAD = [
    (
        "group-count",
        _bad(lambda sd: sd["param_groups"].pop()),
        "^loaded state dict has a different number of parameter groups$",
        True,
    ),
    (
        "group-size",
        _bad(lambda sd: sd["param_groups"][0]["params"].pop()),
        "^loaded state dict contains a parameter group that doesn't match the size of "
        "optimizer's group$",
        True,
    ),
    (
        "other-kind",
        _bad(lambda sd: [g.pop("betas") for g in sd["param_groups"]]),
        "not from Adam: its parameter group 0 has no 'betas' option",
        False,
    ),
    (
        "unknown-key",
        _bad(lambda sd: sd["state"][0].update(momentum_buffer=np.ones(2))),
        r"parameter 0 \('b'\): 'momentum_buffer' is not a state key",
        False,
    ),
    (
        "missing-key",
        _bad(lambda sd: sd["state"][1].pop("exp_avg_sq")),
        r"parameter 1 \('w'\): the loaded state has no 'exp_avg_sq'",
        False,
    ),
    (
        "shape",
        _bad(lambda sd: sd["state"][1].update(exp_avg=np.ones((3, 2)))),
        r"'exp_avg' has shape \(3, 2\), but the parameter's state needs \(2, 3\)",
        False,
    ),
    (
        "negative-second-moment",
        _bad(
            lambda sd: sd["state"][1].update(
                exp_avg_sq=-1.0 - np.asarray(sd["state"][1]["exp_avg_sq"])
            )
        ),
        r"parameter 1 \('w'\): 'exp_avg_sq' has negative entries, but it is a sum or average "
        r"of squares \(or a step size\), never negative: the state dict is damaged",
        False,
    ),
    (
        "step-shape",
        _bad(lambda sd: sd["state"][2].update(step=np.ones(2))),
        "'step' must be a scalar",
        False,
    ),
    (
        "unlisted-id",
        _bad(lambda sd: sd["state"].update({7: sd["state"][0]})),
        "state for parameter id 7, which no parameter group lists",
        False,
    ),
    (
        "invalid-option",
        _bad(lambda sd: sd["param_groups"][1].update(lr=-1.0)),
        "loaded parameter group 1 is invalid for Adam: Invalid learning rate: -1.0",
        False,
    ),
    (
        "not-a-state-dict",
        lambda sd: {"state": {}},
        "a state dict is a dict with 'state' and 'param_groups' entries",
        False,
    ),
]


@pytest.mark.parametrize("name,make,message,torch_too", BAD, ids=[b[0] for b in BAD])
def test_bad_state_dicts_raise_and_change_nothing(name, make, message, torch_too):
    opt = _trained()
    good = opt.state_dict()
    bad = make(good)
    groups = opt.param_groups
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(bad)
    assert opt.param_groups is groups
    after = opt.state_dict()
    assert after["param_groups"] == good["param_groups"]
    for i, entry in good["state"].items():
        for k, v in entry.items():
            np.testing.assert_array_equal(after["state"][i][k], v)
    if torch_too:  # torch raises the very same message
        from tests.optim._pair import to_torch

        with pytest.raises(ValueError, match=message):
            _twin(opt).load_state_dict(to_torch(bad))


@pytest.mark.parametrize("cls", ["Adafactor", "Muon"])
def test_complex_parameters_are_refused_when_their_group_is_added(cls):
    """torch's message and type (``RuntimeError``, at its first step), also a ``TypeError``."""
    real, cplx = jnp.ones((2, 3)), jnp.ones((2, 3), jnp.complex64)
    theirs = getattr(torch.optim, cls)([torch.ones(2, 3, dtype=torch.complex64)])
    theirs.param_groups[0]["params"][0].grad = torch.ones(2, 3, dtype=torch.complex64)
    with pytest.raises(RuntimeError, match=f"{cls} does not support complex parameters"):
        theirs.step()
    for error in (RuntimeError, TypeError):
        with pytest.raises(error, match=f"^{cls} does not support complex parameters: .*'w'"):
            getattr(optim, cls)({"v": real, "w": cplx})
    opt = getattr(optim, cls)({"v": real})
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(TypeError, match="parameter 1 .*complex64"):
        opt.add_param_group({"params": [cplx]})
    assert len(opt.param_groups) == 1
    assert opt.state_dict()["param_groups"] == before["param_groups"]


# ------------------------------------------------------- hostile-input review
@pytest.mark.parametrize(
    "params,exc,message",
    [
        ([{"param": [jnp.ones(2)], "lr": 0.5}], KeyError, "parameter group 0 has no 'params'"),
        ([{"lr": 0.1}, {"params": [jnp.ones(2)]}], KeyError, "parameter group 0 has no 'params'"),
        ([{"params": [jnp.ones(2)]}, {"lr": 0.1}], KeyError, "parameter group 1 has no 'params'"),
        ([{"params": [jnp.ones(2)]}, jnp.ones(2)], TypeError, "entry 1 is a ArrayImpl"),
    ],
    ids=["misspelt", "first-lacks", "second-lacks", "not-a-dict"],
)
def test_group_dicts_without_params_are_refused(params, exc, message):
    if exc is KeyError and "param" in params[0]:  # torch: the same type
        with pytest.raises(KeyError, match="params"):
            torch.optim.Adam([{"param": [torch.zeros(2, requires_grad=True)], "lr": 0.5}])
    with pytest.raises(exc, match=message):
        optim.Adam(params)


def test_a_list_of_dicts_of_arrays_is_still_a_tree():
    opt = optim.SGD([{"a": jnp.ones(2)}, {"b": jnp.ones(3)}], lr=0.5)
    opt.step([{"a": jnp.ones(2)}, {"b": jnp.ones(3)}])
    np.testing.assert_allclose(np.asarray(opt.params[1]["b"]), [0.5] * 3)
    with pytest.raises(KeyError, match="has no 'params' entry"):
        opt.add_param_group({"lr": 0.1})
    assert len(opt.param_groups) == 1


def test_two_parameters_with_one_name_are_refused():
    x = jnp.ones(2)
    with pytest.raises(ValueError, match="two different parameters are named 'a'"):
        optim.SGD([("a", x), ("a", jnp.ones(3))], lr=0.1)
    opt = optim.SGD([("a", x)], lr=0.1)
    with pytest.raises(ValueError, match="two different parameters are named 'b'"):
        opt.add_param_group({"params": [("b", jnp.ones(1)), ("b", jnp.ones(1))]})
    assert len(opt.param_groups) == 1
    with pytest.warns(UserWarning, match="duplicate parameters"):  # the same array: torch's
        optim.SGD([("a", x), ("a", x)], lr=0.1)


NONE_TERMS = [
    (optim.SGD, dict(lr=0.1, weight_decay=None), "weight_decay", True),
    (optim.SGD, dict(lr=0.1, momentum=None), "momentum", True),
    (optim.Adam, dict(weight_decay=None), "weight_decay", True),
    (optim.AdamW, dict(weight_decay=None), "weight_decay", True),
    (optim.RMSprop, dict(momentum=None), "momentum", True),
    (optim.SGD, dict(lr=0.1, weight_decay="0"), "weight_decay", True),
    (optim.SGD, dict(lr=0.1, weight_decay=False), "weight_decay", False),  # torch takes it
]


@pytest.mark.parametrize("cls,kwargs,name,torch_too", NONE_TERMS)
def test_zero_terms_must_be_numbers_at_construction(cls, kwargs, name, torch_too):
    if torch_too:  # torch compares them with 0.0: TypeError
        with pytest.raises(TypeError):
            getattr(torch.optim, cls.__name__)([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(TypeError, match=f"^{name} must be a real number"):
        cls(tree(), **kwargs)
    opt = cls(tree(), **{**kwargs, name: 0})
    with pytest.raises(TypeError, match=rf"^param_groups\[1\]\['{name}'\] must be a real"):
        opt.add_param_group({"params": [jnp.ones(1)], name: kwargs[name]})
    assert len(opt.param_groups) == 1
    opt.param_groups[0][name] = kwargs[name]
    with pytest.raises(TypeError, match=rf"^param_groups\[0\]\['{name}'\] must be a real"):
        opt.step({"b": jnp.ones(2), "w": jnp.ones((2, 3))})


FLAGS = [
    (optim.SGD, "foreach", "yes", "None or a bool"),
    (optim.SGD, "fused", 1, "None or a bool"),
    (optim.SGD, "differentiable", None, "a bool"),
    (optim.Adam, "fused", "x", "None or a bool"),
    (optim.Adam, "capturable", 1, "a bool"),
    (optim.Adam, "differentiable", "x", "a bool"),
    (optim.AdamW, "foreach", 0, "None or a bool"),
]


@pytest.mark.parametrize("cls,name,value,kinds", FLAGS)
def test_torch_flags_must_be_bools(cls, name, value, kinds):
    with pytest.raises(TypeError, match=f"^{name} must be {kinds}, got"):
        cls(tree(), **{name: value})
    for ok in (True, False, None) if kinds.startswith("None") else (True, False):
        cls(tree(), **{name: ok})  # torch's defaults and True still work
    opt = cls(tree())
    with pytest.raises(TypeError, match=rf"^param_groups\[1\]\['{name}'\] must be {kinds}"):
        opt.add_param_group({"params": [jnp.ones(1)], name: value})
    assert len(opt.param_groups) == 1
    opt.param_groups[0][name] = value
    with pytest.raises(TypeError, match=rf"^param_groups\[0\]\['{name}'\] must be {kinds}"):
        opt.step({"b": jnp.ones(2), "w": jnp.ones((2, 3))})


def test_a_closure_without_argument_is_explained():
    opt = optim.SGD(tree(), lr=0.1)
    before = opt.params["b"]
    for call in (opt.step, opt.backward):
        with pytest.raises(TypeError, match=r"takes no positional argument.*step\(lambda params"):
            call(lambda: jnp.float32(1.0))
    np.testing.assert_array_equal(np.asarray(opt.params["b"]), np.asarray(before))
    assert opt.step(lambda *a: jnp.sum(a[0]["b"])) is not None  # *args takes the params
    with pytest.raises(TypeError, match="takes no positional argument"):
        optim.LBFGS(tree()).step(lambda: jnp.float32(1.0))


def _named_trained():
    opt = optim.Adam(list(optim.named_parameters(tree())), lr=0.1)
    opt.step({"b": jnp.ones(2), "w": jnp.ones((2, 3))})
    return opt


def _groups(edit):
    return _bad(lambda sd: edit(sd["param_groups"]))


BAD_TYPED = [
    ("ids-twice", _groups(lambda g: g[0].update(params=[0, 0])), True, ValueError,
     "loaded parameter group 0 lists parameter id 0 twice"),
    ("ids-in-two-groups", _groups(lambda g: g[1].update(params=[0])), True, ValueError,
     "loaded parameter group 1 lists parameter id 0 and so does group 0"),
    ("params-int", _groups(lambda g: g[0].update(params=2)), True, TypeError,
     r"loaded parameter group 0: 'params' must be a list of parameter ids, got int"),
    ("state-str", _bad(lambda sd: sd["state"][1].update(exp_avg="x")), True, TypeError,
     r"parameter 1 \('w'\): 'exp_avg' must be an array of numbers, got str"),
    ("none", lambda sd: None, True, TypeError, "state_dict must be a dict .*got NoneType"),
    ("list", lambda sd: [1, 2], True, TypeError, "state_dict must be a dict .*got list"),
    ("strict-str", lambda sd: sd, "no", TypeError, "strict must be a bool, got str"),
    ("groups-int", _bad(lambda sd: sd.update(param_groups=5)), False, TypeError,
     "'param_groups' must be a list of dicts, got int"),
    ("names-int", _groups(lambda g: g[0].update(param_names=5)), False, TypeError,
     "'param_names' must be a list of str"),
    ("names-short", _groups(lambda g: g[0]["param_names"].pop()), False, ValueError,
     "loaded parameter group 0 has 1 'param_names' for 2 'params'"),
    ("names-twice", _groups(lambda g: g[0].update(param_names=["b", "b"])), False, ValueError,
     "parameter name 'b' is not unique in the state dict"),
    ("ids-twice-by-name", _groups(lambda g: g[0].update(params=[1, 1])), False, ValueError,
     "loaded parameter group 0 lists parameter id 1 twice"),
]  # fmt: skip


@pytest.mark.parametrize("name,make,strict,exc,message", BAD_TYPED, ids=[b[0] for b in BAD_TYPED])
def test_hostile_state_dicts_raise_and_change_nothing(name, make, strict, exc, message):
    opt = _trained() if strict is True else _named_trained()
    good = opt.state_dict()
    bad = make(good)
    with pytest.raises(exc, match=message):
        opt.load_state_dict(bad, strict=strict)
    after = opt.state_dict()
    assert after["param_groups"] == good["param_groups"]
    for i, entry in good["state"].items():
        for k, v in entry.items():
            np.testing.assert_array_equal(after["state"][i][k], v)
