"""optimlab transformations inside optax's wrappers, extra arguments included.

optax decides whether a wrapped transformation takes extra arguments (``value=``,
``value_fn=``) by its class (``optax.with_extra_args_support``); optimlab's
transformations must be recognised, so that the loss reaches ``polyak_sgd``,
``momo`` and ``torch_lbfgs`` through ``optax.chain``, ``MultiSteps``, ``masked``...
Each wrapper must also keep its state structure from one step to the next.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol
from tests import problems


def _everywhere(value, params):
    return jax.tree.map(lambda _: value, params)


WRAPPERS = {
    "chain": lambda tx, p: optax.chain(optax.identity(), tx),
    "multi_steps": lambda tx, p: optax.MultiSteps(tx, every_k_schedule=1),
    "apply_if_finite": lambda tx, p: optax.apply_if_finite(tx, max_consecutive_errors=3),
    "masked": lambda tx, p: optax.masked(tx, _everywhere(True, p)),
    "multi_transform": lambda tx, p: optax.multi_transform({"all": tx}, _everywhere("all", p)),
}

# The optimizers that need the loss (or the loss function) from the caller.
LOSS_USING = {
    "polyak_sgd": (lambda: ol.polyak_sgd(max_learning_rate=1.0), tuple(WRAPPERS)),
    "momo": (lambda: ol.momo(), tuple(WRAPPERS)),
    "momo_adam": (lambda: ol.momo_adam(0.1), tuple(WRAPPERS)),
    # torch_lbfgs flattens the whole tree and evaluates value_fn on it: masking does not apply.
    "torch_lbfgs": (
        lambda: ol.torch_lbfgs(max_iter=2),
        ("chain", "multi_steps", "apply_if_finite"),
    ),
    # optax's L-BFGS also takes the gradient at params (grad=).
    "lbfgs": (lambda: ol.lbfgs(), ("chain", "multi_steps", "apply_if_finite")),
}
# Those that take grad= besides the loss.
WITH_GRAD = {"lbfgs"}


def _signature(tree):
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, [(jnp.shape(x), jnp.asarray(x).dtype) for x in leaves]


def _run_all(bare, wrapped, steps=3, with_grad=False):
    """Runs ``bare`` and every wrapped transformation in one jitted step, loss from outside."""
    params = problems.quadratic_params()
    txs = (bare, *wrapped)
    extra = {"value_fn": problems.quadratic_loss}

    @jax.jit
    def step(params, states):
        value, grads = jax.value_and_grad(problems.quadratic_loss)(params)
        more = {"grad": grads} if with_grad else {}
        out = tuple(
            t.update(grads, s, params, value=value, **extra, **more)
            for t, s in zip(txs, states, strict=True)
        )
        return ol.apply_updates(params, out[0][0]), out

    states = tuple(t.init(params) for t in txs)
    before = [_signature(s) for s in states]
    with jax.numpy_dtype_promotion("standard"):  # optax's wrappers rely on it
        for _ in range(steps):
            params, out = step(params, states)
            states = tuple(s for _, s in out)
            assert [_signature(s) for s in states] == before, "a state changed structure"
            for updates, _ in out[1:]:
                # The same arithmetic in other XLA fusions: equal up to float32 rounding.
                jax.tree.map(
                    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9),
                    updates,
                    out[0][0],
                )
    assert step._cache_size() == 1
    return params


@pytest.mark.parametrize("name", sorted(LOSS_USING))
def test_loss_reaches_optimizer_inside_every_optax_wrapper(name):
    make, wrapper_names = LOSS_USING[name]
    params = problems.quadratic_params()
    tx = make()
    assert isinstance(tx, optax.GradientTransformationExtraArgs)
    assert optax.with_extra_args_support(tx) is tx
    wrapped = [WRAPPERS[w](make(), params) for w in wrapper_names]
    final = _run_all(tx, wrapped, with_grad=name in WITH_GRAD)
    assert problems.distance_to_zero(final) < problems.distance_to_zero(params)


def test_loss_missing_without_forwarding_is_still_reported():
    # optax's plain GradientTransformation drops extra args: the error says what is missing.
    tx = ol.polyak_sgd()
    plain = optax.GradientTransformation(tx.init, lambda u, s, p=None: tx.update(u, s, p))
    params = problems.quadratic_params()
    chained = optax.chain(optax.identity(), plain)
    with pytest.raises(ValueError, match="the loss value is missing"):
        chained.update(params, chained.init(params), params, value=1.0)


INJECTED = {
    "adam": (ol.adam, {"learning_rate": 0.1}),
    "sgd_momentum": (ol.sgd, {"learning_rate": 0.1, "momentum": 0.9}),
    "lion": (ol.lion, {"learning_rate": 0.01}),
    "polyak_sgd": (ol.polyak_sgd, {"max_learning_rate": 1.0}),
    "momo": (ol.momo, {"learning_rate": 1.0}),
    "momo_adam": (ol.momo_adam, {"learning_rate": 0.1}),
}


@pytest.mark.parametrize("name", sorted(INJECTED))
def test_inside_inject_hyperparams(name):
    # inject_hyperparams passes every numeric argument, defaults included, as an array:
    # concrete to init, traced to a jitted update. A default zero weight decay must give
    # the state one structure in both (it is kept whenever it is a JAX array).
    factory, kwargs = INJECTED[name]
    _run_all(factory(**kwargs), [optax.inject_hyperparams(factory)(**kwargs)])


def test_optimlab_chain_drops_extra_args_for_an_update_without_them():
    def init(params):
        return ol.EmptyState()

    def update(updates, state, params=None):  # a user's transformation: no **extra_args
        return jax.tree.map(lambda u: 2 * u, updates), state

    params = problems.quadratic_params()
    for tx in (
        ol.chain(ol.GradientTransformation(init, update), ol.polyak_sgd()),
        optax.chain(ol.GradientTransformation(init, update), ol.polyak_sgd()),
    ):
        updates, _ = tx.update(params, tx.init(params), params, value=jnp.asarray(1.0))
        assert jax.tree.structure(updates) == jax.tree.structure(params)
    # Not claimed as optax's extra-args kind: optax wraps it and drops them, too.
    user = ol.GradientTransformation(init, update)
    assert not isinstance(user, optax.GradientTransformationExtraArgs)
    assert isinstance(user, optax.GradientTransformation)
