"""Param groups: labels, pattern precedence, per-group hyperparameters, extending the state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from optimlab._core._paths import match_patterns


def _params():
    return {
        "encoder": {"w": jnp.array([1.0, -2.0]), "bias": jnp.array([0.5])},
        "head": {"w": jnp.array([[3.0, -1.0]]), "bias": jnp.array([-0.5])},
    }


def _grads(params, k):
    return jax.tree.map(lambda p: 0.5 * p + 0.1 * (k + 1), params)


def _run(tx, params, steps=4):
    state = tx.init(params)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    for k in range(steps):
        updates, state = step(_grads(params, k), state, params)
        params = ol.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("encoder/w", "enc"),  # "encoder/**" (1 literal) beats "**" (0)
        ("head/bias", "nobias"),  # "**/bias" (1) beats "**"
        ("encoder/bias", "enc_bias"),  # "encoder/**/bias" (2) beats both
        ("head/w", "rest"),
        ("head/w/value", "rest"),  # a pattern matching an ancestor matches below it
    ],
)
def test_pattern_precedence(path, expected):
    patterns = {
        "**": "rest",
        "encoder/**": "enc",
        "**/bias": "nobias",
        "encoder/**/bias": "enc_bias",
    }
    assert match_patterns(path, patterns, "t") == (True, expected)


def test_ancestor_match_and_ambiguity():
    assert match_patterns("enc/bias/value", {"**/bias": 1}, "t") == (True, 1)
    assert match_patterns("enc/w", {"**/bias": 1}, "t") == (False, None)
    assert match_patterns("layers/3/w", {"layers/*/w": "a", "**": "b"}, "t") == (True, "a")
    with pytest.raises(ValueError, match=r"'encoder/bias' is matched by 2 patterns"):
        match_patterns("encoder/bias", {"encoder/**": "a", "**/bias": "b"}, "t")
    # Two equally specific patterns that agree are not ambiguous.
    assert match_patterns("encoder/bias", {"encoder/**": "a", "**/bias": "a"}, "t") == (True, "a")


def test_group_learning_rates_equal_separate_optimizers_on_subtrees():
    params = _params()
    tx = ol.partition(
        {"slow": ol.adam(1e-3), "fast": ol.adam(1e-1)}, {"encoder": "slow", "head": "fast"}
    )
    final, _ = _run(tx, params)
    for name, lr in (("encoder", 1e-3), ("head", 1e-1)):
        sub, _ = _run(ol.adam(lr), params[name])
        for key in sub:
            np.testing.assert_array_equal(final[name][key], sub[key])


def test_labels_as_function_tree_and_patterns_agree():
    params = _params()
    txs = {"decay": ol.sgd(0.1, weight_decay=0.1), "plain": ol.sgd(0.1)}
    by_fn = ol.partition(txs, lambda path, leaf: "plain" if path.endswith("bias") else "decay")
    by_tree = ol.partition(
        txs, {"encoder": {"w": "decay", "bias": "plain"}, "head": {"w": "decay", "bias": "plain"}}
    )
    by_patterns = ol.partition(txs, {"**": "decay", "**/bias": "plain"})
    results = [_run(tx, params)[0] for tx in (by_fn, by_tree, by_patterns)]
    for other in results[1:]:
        jax.tree.map(np.testing.assert_array_equal, results[0], other)


def test_group_states_hold_only_their_leaves():
    params = _params()
    tx = ol.partition({"a": ol.adam(0.1), "b": ol.set_to_zero()}, {"**": "a", "**/bias": "b"})
    state = tx.init(params)
    adam_state = state.inner_states["a"].inner_state[0]
    assert sorted(adam_state.mu) == ["encoder/w", "head/w"]
    assert jax.tree.leaves(state.inner_states["b"]) == []


def test_hyperparams_report_and_set_per_group():
    params = _params()
    tx = ol.partition_overrides(
        ol.adamw,
        {"slow": {"learning_rate": 1e-4}, "no_decay": {"weight_decay": None}, "rest": {}},
        {"**": "rest", "encoder": "slow", "head/bias": "no_decay"},
        learning_rate=1e-3,
        weight_decay=0.05,
    )
    state = tx.init(params)
    hp = ol.hyperparams(state)
    assert {"slow/learning_rate", "no_decay/learning_rate", "rest/weight_decay"} <= set(hp)
    assert "no_decay/weight_decay" not in hp
    np.testing.assert_allclose(hp["slow/learning_rate"], 1e-4)
    state = ol.set_hyperparams(state, group="slow", learning_rate=0.5)
    hp2 = ol.hyperparams(state)
    np.testing.assert_allclose(hp2["slow/learning_rate"], 0.5)
    np.testing.assert_allclose(hp2["rest/learning_rate"], 1e-3)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    _, state = step(_grads(params, 0), state, params)
    step(_grads(params, 1), ol.set_hyperparams(state, group="rest", learning_rate=0.2), params)
    assert step._cache_size() == 1


def test_extend_state_adds_a_group_without_resetting_others():
    params = _params()
    before = ol.partition(
        {"train": ol.adam(0.1), "frozen": ol.set_to_zero()}, {"encoder": "frozen", "head": "train"}
    )
    _, state = _run(before, params, steps=3)
    after = ol.partition(
        {"train": ol.adam(0.1), "encoder": ol.adam(0.01)}, {"encoder": "encoder", "head": "train"}
    )
    new_state = ol.extend_state(after, state, params)
    old_train, new_train = state.inner_states["train"], new_state.inner_states["train"]
    jax.tree.map(np.testing.assert_array_equal, old_train, new_train)
    assert int(new_state.inner_states["encoder"].count) == 0
    # The extended state runs and matches a state for `after` in structure.
    assert jax.tree.structure(new_state) == jax.tree.structure(after.init(params))
    updates, _ = jax.jit(after.update)(_grads(params, 0), new_state, params)
    assert all(bool(jnp.all(u != 0)) for u in jax.tree.leaves(updates))


def test_none_leaves_and_integer_leaves():
    params = {"w": jnp.ones(2), "step": jnp.array(3, jnp.int32), "gone": None}
    tx = ol.partition(
        {"train": ol.sgd(0.1), "frozen": ol.set_to_zero()}, {"**": "train", "step": "frozen"}
    )
    grads = {"w": jnp.ones(2), "step": jnp.array(0, jnp.int32), "gone": None}
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    assert updates["gone"] is None
    assert updates["step"].dtype == jnp.int32 and int(updates["step"]) == 0
    np.testing.assert_allclose(updates["w"], -0.1)


def test_add_decayed_weights_patterns_match_tree_mask():
    params = _params()
    tree_mask = {"encoder": {"w": True, "bias": False}, "head": {"w": True, "bias": False}}
    ref, _ = _run(ol.adamw(0.1, weight_decay=0.3, mask=tree_mask), params)
    for mask in ({"**": True, "**/bias": False}, ["**/w"]):
        got, _ = _run(ol.adamw(0.1, weight_decay=0.3, mask=mask), params)
        jax.tree.map(np.testing.assert_array_equal, ref, got)
