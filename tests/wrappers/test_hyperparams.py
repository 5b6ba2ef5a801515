"""Hyperparameter names reported for param groups and chains round-trip through set_hyperparams."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol


def _params():
    return {"body": jnp.ones(2), "head": jnp.ones(3)}


def _partition():
    return ol.partition(
        {"body": ol.adam(0.1), "head": ol.sgd(0.2)}, {"body": "body", "head": "head"}
    )


def _named_chain():
    return ol.named_chain(("body", ol.adam(0.1)), ("head", ol.sgd(0.2)))


def _chain():
    return ol.chain(ol.adam(0.1), ol.sgd(0.2))


@pytest.mark.parametrize(
    "make", [_partition, _named_chain, _chain], ids=["partition", "named_chain", "chain"]
)
def test_every_reported_name_round_trips(make):
    tx = make()
    params = _params()
    state = tx.init(params)
    names = ol.hyperparams(state)
    assert len(names) == 6  # adam's five (eps_root too) and sgd's learning rate, each prefixed
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    _, state = step(params, state, params)
    for i, (name, value) in enumerate(sorted(names.items())):
        new_value = np.float32(0.5 * float(value) + 0.001 * i)
        state = ol.set_hyperparams(state, **{name: new_value})
        after = ol.hyperparams(state)
        np.testing.assert_allclose(after[name], new_value)
        for other, v in after.items():  # the other optimizer's same-named entry is untouched
            if other != name and other.rsplit("/", 1)[1] == name.rsplit("/", 1)[1]:
                assert float(v) != float(new_value)
    step(params, state, params)
    assert step._cache_size() == 1


@pytest.mark.parametrize(
    "make", [_partition, _named_chain, _chain], ids=["partition", "named_chain", "chain"]
)
def test_full_name_and_group_agree(make):
    state = make().init(_params())
    prefix = sorted(k for k in ol.hyperparams(state) if k.endswith("/learning_rate"))[-1]
    group = prefix.rsplit("/", 1)[0]
    by_name = ol.set_hyperparams(state, **{prefix: 0.03})
    by_group = ol.set_hyperparams(state, group=group, learning_rate=0.03)
    both = ol.set_hyperparams(state, group=group, **{prefix: 0.03})
    for s in (by_group, both):
        jax.tree.map(np.testing.assert_array_equal, ol.hyperparams(by_name), ol.hyperparams(s))
    assert sum(float(v) == pytest.approx(0.03) for v in ol.hyperparams(by_name).values()) == 1


def test_full_name_outside_the_group_is_refused():
    state = _partition().init(_params())
    with pytest.raises(
        ValueError, match=r"set_hyperparams: 'head/learning_rate' is not in group 'body'"
    ):
        ol.set_hyperparams(state, group="body", **{"head/learning_rate": 0.1})


def test_unknown_full_name_is_refused():
    state = _partition().init(_params())
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['tail/learning_rate'\]"):
        ol.set_hyperparams(state, **{"tail/learning_rate": 0.1})
