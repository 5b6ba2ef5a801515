"""A term built at zero stays in the state, settable later; ``None`` leaves it out.

The state's structure depends on the algorithm, not on the values it was built
with: ``set_hyperparams(adamw(weight_decay=0.0).init(p), weight_decay=0.1)``
works, and the run it gives is bitwise the run of ``adamw(weight_decay=0.1)``
(both feed the value from the state to the same compiled step). ``None`` is
optax's spelling of "no term", and leaves the term and its slot out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
from optimlab import optim


def _params():
    # A matrix and a vector: muon and galore act on matrices, the rest elementwise.
    return {
        "w": jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(4, 3),
        "b": jnp.array([0.5, -0.25, 1.0], jnp.float32),
    }


def _loss(params):
    return sum(0.5 * jnp.sum((p - 0.1) ** 2) for p in jax.tree.leaves(params))


def _value(params):
    return {"value": _loss(params)}


def _hessian(params):
    return {"hessian_diag": jax.tree.map(jnp.ones_like, params)}


@dataclasses.dataclass(frozen=True)
class Term:
    """An optional term of one optimizer: ``make(**{term: value})`` builds it."""

    make: Callable[..., Any]
    term: str
    value: float = 0.1
    extra: Callable[[Any], dict[str, Any]] | None = None
    none_ok: bool = True  # ``None`` leaves the term out (else it is refused, as optax)

    @property
    def id(self) -> str:
        return f"{getattr(self.make, '__name__', 'factory')}-{self.term}"


_DECAY = [
    ol.adam,
    ol.adamw,
    ol.amsgrad,
    ol.adamax,
    ol.adamaxw,
    ol.nadam,
    ol.nadamw,
    ol.radam,
    ol.adagrad,
    ol.adadelta,
    ol.rmsprop,
    ol.sgd,
    ol.asgd,
    ol.lamb,
    ol.lars,
    ol.lion,
    ol.novograd,
    ol.adan,
    ol.ademamix,
    ol.torch_adafactor,
    ol.cocob,
    ol.dadapt_adamw,
    ol.prodigy,
    ol.schedule_free_adamw,
    ol.schedule_free_sgd,
    ol.dog,
    ol.dowg,
    ol.galore,
    ol.muon,
    ol.torch_muon,
]

TERMS = [
    *(Term(f, "weight_decay", none_ok=f is not ol.muon) for f in _DECAY),
    Term(ol.momo, "weight_decay", extra=_value),
    Term(ol.momo_adam, "weight_decay", extra=_value),
    Term(ol.sophia, "weight_decay", extra=_hessian),
    Term(ol.muon, "adam_weight_decay", none_ok=False),
    Term(ol.torch_muon, "adam_weight_decay"),
    Term(ol.sgd, "momentum", 0.9),
    Term(ol.rmsprop, "momentum", 0.9),
    Term(ol.lars, "momentum", 0.5),
    *(
        Term(f, "eps_root", 1e-6)
        for f in (ol.adam, ol.adamw, ol.amsgrad, ol.nadam, ol.nadamw, ol.radam)
    ),
    Term(ol.lamb, "eps_root", 1e-6, none_ok=False),
    Term(ol.novograd, "eps_root", 1e-6, none_ok=False),
]


def _run(tx, term: Term, state=None, steps: int = 3):
    params = _params()
    state = tx.init(params) if state is None else state
    extra = term.extra or (lambda p: {})

    @jax.jit
    def step(params, state):
        grads = jax.grad(_loss)(params)
        updates, state = tx.update(grads, state, params, **extra(params))
        return ol.apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state)
    return params, state


def _make(term: Term, value: Any):
    kwargs = {term.term: value}
    if term.make in (ol.momo, ol.momo_adam, ol.dog, ol.dowg, ol.cocob, ol.prodigy):
        return term.make(**kwargs)
    return term.make(0.01, **kwargs)


@pytest.mark.parametrize("term", TERMS, ids=[t.id for t in TERMS])
def test_zero_term_is_settable_and_matches_building_with_the_value(term):
    built_zero = _make(term, 0.0)
    state = built_zero.init(_params())
    assert term.term in ol.hyperparams(state), (
        f"{term.id}: a term built at 0.0 must stay in the state"
    )
    state = ol.set_hyperparams(state, **{term.term: term.value})
    p_set, s_set = _run(built_zero, term, state)
    p_built, s_built = _run(_make(term, term.value), term)
    assert jax.tree.structure(s_set) == jax.tree.structure(s_built)
    set_leaves, built_leaves = jax.tree.leaves((p_set, s_set)), jax.tree.leaves((p_built, s_built))
    for a, b in zip(set_leaves, built_leaves, strict=True):
        np.testing.assert_array_equal(a, b)


OPTIONAL = [t for t in TERMS if t.none_ok]


@pytest.mark.parametrize("term", OPTIONAL, ids=[t.id for t in OPTIONAL])
def test_zero_term_acts_as_no_term(term):
    """At 0.0 the carried term changes nothing: the run equals the ``None`` build's."""
    p_zero, _ = _run(_make(term, 0.0), term)
    p_none, s_none = _run(_make(term, None), term)
    assert term.term not in ol.hyperparams(s_none)
    for a, b in zip(jax.tree.leaves(p_zero), jax.tree.leaves(p_none), strict=True):
        # x + 0 * p is x, but XLA may fuse the carried term's add into a different
        # kernel and round once differently: a few ulps over three steps, no more.
        np.testing.assert_array_max_ulp(a, b, maxulp=4)


def test_structure_does_not_depend_on_the_value():
    params = _params()
    states = [ol.adamw(1e-3, weight_decay=wd).init(params) for wd in (0.0, 1e-4, 0.5)]
    structures = {jax.tree.structure(s) for s in states}
    assert len(structures) == 1


def test_shell_keeps_torch_zero_terms_out_and_crossing_zero_rebuilds():
    """optimlab.optim passes torch's zero terms as ``None``: no slot, as torch skips them."""
    params = {"w": jnp.ones((3,), jnp.float32)}
    grads = {"w": jnp.full((3,), 0.5, jnp.float32)}
    opt = optim.SGD(params, lr=0.1)
    opt.step(grads)
    assert "momentum_buffer" not in opt.state_dict()["state"].get(0, {})
    opt.param_groups[0]["momentum"] = 0.9
    opt.step(grads)
    assert "momentum_buffer" in opt.state_dict()["state"][0]
    # torch: the buffer starts at the first step taken with momentum, from the gradient.
    np.testing.assert_allclose(opt.state_dict()["state"][0]["momentum_buffer"], 0.5)
    np.testing.assert_allclose(opt.params["w"], 1.0 - 0.05 - 0.05)
