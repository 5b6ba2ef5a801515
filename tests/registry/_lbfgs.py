"""Registry entries for L-BFGS: the single-evaluation transformation and its errors."""

import jax.numpy as jnp

import optimlab as ol

from ._types import Case, ErrorCase

CASES = [
    # One fixed-step iteration per update (torch's LBFGS(max_iter=1)): the only
    # configuration that needs no value_fn, so the only one the generic checks can drive.
    Case(
        "lbfgs_single",
        lambda: ol.torch_lbfgs(max_iter=1, history_size=3),
        tags=("torch",),
        complex_ok=True,
    ),
]


def _minimize(**options):
    return ol.minimize(lambda p: jnp.sum(p**2), jnp.ones(2), **options)


def _update(tx, **extra):
    params = jnp.ones(2)
    return tx.update(2 * params, tx.init(params), params, **extra)


ERROR_CASES = [
    ErrorCase(
        # torch computes max_eval = max_iter * 5 // 4 first, and fails inside it.
        "optim_lbfgs_string_max_iter",
        lambda: ol.optim.LBFGS({"w": jnp.zeros(2)}, max_iter="20"),
        "construct",
        TypeError,
        r"^torch_lbfgs: max_iter must be an int, got '20'$",
    ),
    ErrorCase(
        "lbfgs_negative_lr",
        lambda: ol.torch_lbfgs(-1.0),
        "construct",
        ValueError,
        r"^torch_lbfgs: Invalid learning rate: -1.0$",
    ),
    ErrorCase(
        "lbfgs_zero_max_iter",
        lambda: ol.torch_lbfgs(max_iter=0),
        "construct",
        ValueError,
        r"^torch_lbfgs: Invalid max_iter value: 0 \(must be > 0\)$",
    ),
    ErrorCase(
        "lbfgs_float_max_iter",
        lambda: ol.torch_lbfgs(max_iter=2.5),
        "construct",
        TypeError,
        r"^torch_lbfgs: max_iter must be an int, got 2.5$",
    ),
    ErrorCase(
        "lbfgs_zero_max_eval",
        lambda: ol.torch_lbfgs(max_eval=0),
        "construct",
        ValueError,
        r"^torch_lbfgs: Invalid max_eval value: 0 \(must be > 0\)$",
    ),
    ErrorCase(
        "lbfgs_zero_history",
        lambda: ol.torch_lbfgs(history_size=0),
        "construct",
        ValueError,
        r"^torch_lbfgs: Invalid history_size value: 0 \(must be > 0\)$",
    ),
    ErrorCase(
        "lbfgs_unknown_line_search",
        lambda: ol.torch_lbfgs(line_search_fn="armijo"),
        "construct",
        ValueError,
        r"^torch_lbfgs: only 'strong_wolfe' is supported",
    ),
    ErrorCase(
        "minimize_negative_lr",
        lambda: _minimize(learning_rate=-0.5),
        "construct",
        ValueError,
        r"^minimize: Invalid learning rate: -0.5$",
    ),
    ErrorCase(
        "minimize_negative_history",
        lambda: _minimize(history_size=-1),
        "construct",
        ValueError,
        r"^minimize: Invalid history_size value: -1 \(must be > 0\)$",
    ),
    ErrorCase(
        "minimize_unknown_line_search",
        lambda: _minimize(line_search_fn="wolfe"),
        "construct",
        ValueError,
        r"^minimize: only 'strong_wolfe' is supported",
    ),
    ErrorCase(
        "minimize_wrong_state",
        lambda: _minimize(state=ol.sgd(0.1).init(jnp.ones(2))),
        "update",
        ValueError,
        r"minimize: expected an LBFGSState, got HyperparamsState",
    ),
    ErrorCase(
        "minimize_state_history_mismatch",
        lambda: _minimize(state=_minimize(history_size=3)[1]),
        "update",
        ValueError,
        r"minimize: the state holds a history of 3 pairs but history_size=100",
    ),
    ErrorCase(
        "minimize_state_size_mismatch",
        lambda: ol.minimize(lambda p: jnp.sum(p**2), jnp.ones(3), state=_minimize()[1]),
        "update",
        ValueError,
        r"minimize: the state is for 2 float32 entries but the params flatten to 3",
    ),
    ErrorCase(
        "lbfgs_multi_iteration_needs_value_fn",
        lambda: _update(ol.torch_lbfgs()),
        "update",
        ValueError,
        r"lbfgs: without value_fn, update does one iteration",
    ),
    ErrorCase(
        "lbfgs_line_search_needs_value_fn",
        lambda: _update(ol.torch_lbfgs(max_iter=1, line_search_fn="strong_wolfe")),
        "update",
        ValueError,
        r"lbfgs: without value_fn",
    ),
    ErrorCase(
        "lbfgs_value_fn_needs_value",
        lambda: _update(ol.torch_lbfgs(), value_fn=lambda p: jnp.sum(p**2)),
        "update",
        ValueError,
        r"lbfgs: with value_fn, update needs params and value",
    ),
    ErrorCase(
        "lbfgs_update_structure",
        lambda: ol.torch_lbfgs(max_iter=1).update(
            {"a": jnp.zeros(2)},
            ol.torch_lbfgs(max_iter=1).init({"a": jnp.zeros(2)}),
            {"b": jnp.zeros(2)},
        ),
        "update",
        ValueError,
        r"lbfgs: .*\['a'\].*\['b'\]",
    ),
    ErrorCase(
        "lbfgs_update_size",
        lambda: ol.torch_lbfgs(max_iter=1).update(
            jnp.zeros(3), ol.torch_lbfgs(max_iter=1).init(jnp.zeros(2))
        ),
        "update",
        ValueError,
        r"lbfgs: the updates flatten to 3 entries but the state is for 2",
    ),
]
