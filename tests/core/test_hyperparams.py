"""Hyperparameters live in the state: readable, settable, schedulable, vmappable."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from tests import problems


def test_read_and_set():
    state = ol.adam(1e-3, b1=0.8).init(problems.quadratic_params())
    hp = ol.hyperparams(state)
    assert set(hp) == {"learning_rate", "b1", "b2", "eps", "eps_root"}  # optax's eps_root=0.0
    np.testing.assert_allclose(hp["b1"], 0.8, rtol=1e-7)
    state2 = ol.set_hyperparams(state, b1=0.5, learning_rate=np.float32(0.1))
    np.testing.assert_allclose(ol.hyperparams(state2)["b1"], 0.5)
    np.testing.assert_allclose(ol.hyperparams(state)["b1"], 0.8, rtol=1e-7)  # not mutated


@pytest.mark.parametrize(
    "value",
    [
        0.01,
        np.float32(0.01),
        np.float64(0.01),
        jnp.asarray(0.01),
        jnp.asarray(0.01, jnp.bfloat16),
        1,
    ],
)
def test_setting_any_scalar_kind_never_recompiles(value):
    tx = ol.adamw(1e-3)
    params = problems.quadratic_params()
    grads = jax.grad(problems.quadratic_loss)(params)
    step = jax.jit(tx.update)
    _, state = step(grads, tx.init(params), params)
    state = ol.set_hyperparams(state, learning_rate=value, weight_decay=value)
    step(grads, state, params)
    assert step._cache_size() == 1
    assert ol.hyperparams(state)["learning_rate"].dtype == jnp.float32
    assert not ol.hyperparams(state)["learning_rate"].weak_type


def test_changing_values_over_100_steps_compiles_once():
    tx = ol.sgd(0.1, momentum=0.9)
    params = problems.quadratic_params()
    state = tx.init(params)
    step = jax.jit(lambda p, s: tx.update(jax.grad(problems.quadratic_loss)(p), s, p))
    for k in range(100):
        state = ol.set_hyperparams(state, learning_rate=0.1 / (1 + k), momentum=0.5 + k / 250)
        updates, state = step(params, state)
        params = ol.apply_updates(params, updates)
    assert step._cache_size() == 1


def test_schedule_and_constant_give_identical_state_structure():
    params = problems.quadratic_params()
    const = ol.adam(1e-3).init(params)
    sched = ol.adam(lambda step: 1e-3 * 0.5 ** step.astype(jnp.float32), b1=lambda step: 0.9).init(
        params
    )
    assert jax.tree.structure(const) == jax.tree.structure(sched)
    assert [x.dtype for x in jax.tree.leaves(const)] == [x.dtype for x in jax.tree.leaves(sched)]


def test_hyperparams_reports_value_used_at_last_step():
    tx = ol.sgd(lambda step: 1.0 / (1.0 + step.astype(jnp.float32)))
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    assert float(ol.hyperparams(state)["learning_rate"]) == 1.0
    seen = []
    for _ in range(3):
        updates, state = tx.update({"w": jnp.ones(2)}, state, params)
        seen.append(-float(updates["w"][0]))
        assert float(ol.hyperparams(state)["learning_rate"]) == pytest.approx(seen[-1])
    assert seen == pytest.approx([1.0, 0.5, 1 / 3])


def test_a_scheduled_value_cannot_be_set():
    """The schedule recomputes the value at every step: a set value would be lost."""
    tx = ol.sgd(lambda step: 0.25)
    state = tx.init(jnp.ones(1))
    message = r"^set_hyperparams: 'learning_rate' follows a schedule given when the optimizer"
    with pytest.raises(ValueError, match=message):
        ol.set_hyperparams(state, learning_rate=3.0)
    updates, _ = tx.update(jnp.ones(1), state)
    assert float(updates[0]) == -0.25


def test_vmap_population_of_learning_rates():
    tx = ol.adam(1e-3)
    params = problems.quadratic_params()
    lrs = jnp.array([1e-4, 1e-3, 1e-2, 1e-1])

    def train(lr):
        state = ol.set_hyperparams(tx.init(params), learning_rate=lr)
        final, _, losses = problems.make_train(tx, problems.quadratic_loss, 50)(params, state)
        return losses[-1]

    population = jax.jit(jax.vmap(train))(lrs)
    one_by_one = jnp.stack([train(lr) for lr in lrs])
    np.testing.assert_allclose(population, one_by_one, rtol=1e-5)
    assert float(population[3]) < float(population[0])  # a larger lr learned more


def test_vmap_over_batched_states():
    tx = ol.sgd(0.1, momentum=0.9)
    params = {"w": jnp.ones(3)}
    states = jax.vmap(lambda lr: ol.set_hyperparams(tx.init(params), learning_rate=lr))(
        jnp.array([0.1, 0.2])
    )
    assert ol.hyperparams(states)["learning_rate"].shape == (2,)
    updates, states = jax.vmap(lambda s: tx.update({"w": jnp.ones(3)}, s, params))(states)
    np.testing.assert_allclose(updates["w"][:, 0], [-0.1, -0.2], rtol=1e-6)


def test_step_counter_saturates():
    tx = ol.adam(1e-3)
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    state = state._replace(count=jnp.asarray(2**31 - 1, jnp.int32))
    updates, state = jax.jit(tx.update)({"w": jnp.ones(2)}, state, params)
    assert int(state.count) == 2**31 - 1
    assert bool(jnp.all(jnp.isfinite(updates["w"])))


def test_differentiate_through_an_optimizer_step():
    # d(loss after one sgd step)/d(lr) by autodiff equals the analytic value.
    params = {"w": jnp.array([1.0, 2.0])}

    def after_one_step(lr):
        tx = ol.sgd(0.0)
        state = ol.set_hyperparams(tx.init(params), learning_rate=lr)
        grads = params  # gradient of 0.5 * |w|^2
        updates, _ = tx.update(grads, state, params)
        new = ol.apply_updates(params, updates)
        return 0.5 * jnp.sum(new["w"] ** 2)

    lr = 0.1
    got = jax.grad(after_one_step)(lr)
    # new = w (1 - lr) ; d/dlr 0.5 |w|^2 (1-lr)^2 = -(1-lr) |w|^2
    np.testing.assert_allclose(got, -(1 - lr) * 5.0, rtol=1e-6)


def test_nested_optimizers_are_prefixed():
    tx = ol.chain(ol.sgd(0.1), ol.adam(0.2))
    state = tx.init(jnp.ones(2))
    hp = ol.hyperparams(state)
    assert float(hp["0/learning_rate"]) == pytest.approx(0.1)
    assert float(hp["1/learning_rate"]) == pytest.approx(0.2)
    state = ol.set_hyperparams(state, group="1", learning_rate=0.5)
    hp = ol.hyperparams(state)
    assert float(hp["0/learning_rate"]) == pytest.approx(0.1)
    assert float(hp["1/learning_rate"]) == pytest.approx(0.5)


# --- the packed layout: one array holds every hyperparameter of one optimizer ---


def test_one_leaf_adam_state_has_four_buffers():
    state = ol.adam(1e-3).init(jnp.zeros(3))
    leaves = jax.tree.leaves(state)
    assert len(leaves) == 4  # count, packed hyperparameters, mu, nu
    assert isinstance(state.hyperparams, ol.Hyperparams)
    assert state.hyperparams.packed.shape == (5,)  # learning_rate, b1, b2, eps, eps_root
    assert state.hyperparams.packed.dtype == jnp.float32
    assert not state.hyperparams.packed.weak_type


def test_donated_one_leaf_step_updates_the_counter_in_place():
    # Bias corrections read the incremented count (the same expression as the new
    # counter), so XLA writes the donated counter in place instead of copying it.
    params = {"w": jnp.ones(8)}
    tx = ol.adam(1e-3)

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return ol.apply_updates(p, u), s

    text = jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), params)
    entry = text.compile().as_text().split("ENTRY", 1)[1]
    assert " copy(" not in entry


def test_hyperparams_is_a_read_only_mapping():
    h = ol.Hyperparams.from_mapping({"learning_rate": 0.5, "b1": 0.25, "eps": 1})
    assert list(h) == list(h.keys()) == ["learning_rate", "b1", "eps"]
    assert len(h) == 3 and "b1" in h and "b2" not in h
    assert h.packed.dtype == jnp.float32 and h.packed.shape == (3,)
    assert dict(h) == {"learning_rate": 0.5, "b1": 0.25, "eps": 1.0}
    assert [(k, float(v)) for k, v in h.items()] == [
        ("learning_rate", 0.5),
        ("b1", 0.25),
        ("eps", 1),
    ]
    assert [float(v) for v in h.values()] == [0.5, 0.25, 1.0]  # the Mapping method
    assert h["eps"].dtype == jnp.float32 and h["eps"].shape == ()
    assert repr(h) == "Hyperparams(learning_rate=0.5, b1=0.25, eps=1.0)"
    assert h == ol.Hyperparams(("learning_rate", "b1", "eps"), jnp.array([0.5, 0.25, 1.0]))
    assert h != ol.Hyperparams.from_mapping({"learning_rate": 0.5, "b1": 0.5, "eps": 1})
    assert ol.Hyperparams.from_mapping(h) == h
    with pytest.raises(KeyError):
        h["b2"]
    with pytest.raises(AttributeError, match="read-only"):
        h.packed = jnp.zeros(3)  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(h)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        ol.Hyperparams(("a", "b"), jnp.zeros(3))
    leaves, treedef = jax.tree.flatten(h)
    assert len(leaves) == 1 and leaves[0] is h.packed
    assert jax.tree.unflatten(treedef, leaves) == h
    path = jax.tree_util.keystr(jax.tree_util.tree_flatten_with_path(h)[0][0][0])
    assert path == ".packed"


def test_constant_hyperparams_pass_through_a_jitted_step_untouched():
    tx = ol.adam(1e-3)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    jaxpr = jax.make_jaxpr(tx.update)(params, state, params).jaxpr
    in_pos = len(jax.tree.leaves(params)) + 1  # after the updates and the count
    out_pos = len(jax.tree.leaves(params)) + 1
    assert jaxpr.outvars[out_pos] is jaxpr.invars[in_pos]  # no op on the packed array


def test_schedules_are_packed_in_the_stored_order_and_dtype():
    tx = ol.adam(lambda step: 0.5 ** step.astype(jnp.float32), b2=lambda step: 0.5)
    state = tx.init(jnp.zeros(2))
    _, new = jax.jit(tx.update)(jnp.ones(2), state)
    assert new.hyperparams.names == state.hyperparams.names
    assert new.hyperparams.packed.dtype == state.hyperparams.packed.dtype
    assert jax.tree.structure(new) == jax.tree.structure(state)
    np.testing.assert_allclose(new.hyperparams["learning_rate"], 1.0)
    np.testing.assert_allclose(new.hyperparams["b2"], 0.5)


def test_reading_and_setting_under_jit_compile_once():
    tx = ol.sgd(0.1, momentum=0.9)
    params = {"w": jnp.ones(2)}

    @jax.jit
    def step(state, lr):
        state = ol.set_hyperparams(state, learning_rate=lr)
        updates, state = tx.update(params, state, params)
        return updates, state, ol.hyperparams(state)["learning_rate"]

    state = tx.init(params)
    for lr in (0.1, 0.2, np.float32(0.3)):
        updates, state, seen = step(state, jnp.float32(lr))
        np.testing.assert_allclose(seen, lr, rtol=1e-7)
    assert step._cache_size() == 1


def test_set_hyperparams_on_a_population_batched_outside_vmap():
    tx = ol.adam(1e-3)
    params = {"w": jnp.ones(2)}
    states = jax.vmap(lambda _: tx.init(params))(jnp.arange(3))
    assert states.hyperparams.packed.shape == (3, 5)
    states = ol.set_hyperparams(
        states, learning_rate=np.array([0.1, 0.2, 0.3]), b1=0.5 * np.ones(3)
    )
    hp = ol.hyperparams(states)
    np.testing.assert_allclose(hp["learning_rate"], [0.1, 0.2, 0.3], rtol=1e-7)
    np.testing.assert_allclose(hp["b1"], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(hp["b2"], [0.999] * 3, rtol=1e-7)
    assert states.hyperparams.packed.dtype == jnp.float32
    with pytest.raises(ValueError, match=r"must have shape \(3,\)"):
        ol.set_hyperparams(states, learning_rate=0.1)
    updates, _ = jax.vmap(lambda s: tx.update(params, s, params))(states)
    np.testing.assert_allclose(updates["w"][:, 0], [-0.1, -0.2, -0.3], rtol=1e-5)


def test_eval_shape_init_gives_the_packed_array():
    tx = ol.adamw(1e-3)
    abstract = jax.eval_shape(tx.init, problems.quadratic_params())
    assert isinstance(abstract.hyperparams, ol.Hyperparams)
    assert abstract.hyperparams.packed.shape == (6,)
    assert jax.tree.structure(abstract) == jax.tree.structure(tx.init(problems.quadratic_params()))


def test_a_state_with_a_plain_dict_of_values_still_updates():
    # optimlab.optim feeds each group's values as a dict into the stored state.
    tx = ol.adam(1e-3)
    params = {"w": jnp.arange(3.0)}
    state = tx.init(params)
    fed = state._replace(hyperparams=dict(ol.hyperparams(state), learning_rate=jnp.float32(0.1)))
    updates, new = jax.jit(tx.update)(params, fed, params)
    assert isinstance(new.hyperparams, ol.Hyperparams)
    assert new.hyperparams.names == state.hyperparams.names
    expected, _ = tx.update(params, ol.set_hyperparams(state, learning_rate=0.1), params)
    chex.assert_trees_all_close(updates, expected)
    with pytest.raises(ValueError, match="state from another optimizer"):
        tx.update(params, state._replace(hyperparams={"learning_rate": 0.1}), params)


def test_the_scheduled_tag_leaves_the_structure_and_survives_jit_vmap_and_pickle():
    import pickle

    params = {"w": jnp.ones(3)}
    scheduled = ol.adam(lambda step: 0.1).init(params)
    fixed = ol.adam(0.1).init(params)
    names = scheduled.hyperparams.names
    assert names.scheduled == {"learning_rate"} and not fixed.hyperparams.names.scheduled
    assert names == tuple(names) and hash(names) == hash(tuple(names))
    assert jax.tree.structure(scheduled) == jax.tree.structure(fixed)
    batched = jax.vmap(lambda _: ol.adam(lambda step: 0.1).init(params))(jnp.arange(2))
    for state in (pickle.loads(pickle.dumps(scheduled)), jax.jit(lambda s: s)(batched)):
        assert state.hyperparams.names.scheduled == {"learning_rate"}
        # the values built with numbers can still be set
        state = ol.set_hyperparams(state, b1=np.full(state.hyperparams["b1"].shape, 0.8))
        assert np.all(np.asarray(ol.hyperparams(state)["b1"]) == np.float32(0.8))
    assert (
        float(ol.hyperparams(ol.set_hyperparams(fixed, learning_rate=0.5))["learning_rate"]) == 0.5
    )
