"""State fields declared never negative: the declarations hold, and a restore enforces them.

A second moment, a running sum of squares or a step size is never negative in a
state the optimizer wrote; the step takes its square root or divides by it. Each
state class declares such fields (``never_negative``), and
:func:`optimlab.checkpoint.restore` refuses a file where one holds a negative
entry, naming its key path. The cases are the registry's, one per distinct set of
declaring state classes.
"""

import jax
import numpy as np
import pytest

import optimlab as ol
from optimlab import checkpoint
from optimlab._core._base import never_negative_fields
from tests import problems
from tests.registry import CASES


def _declares(node):
    return bool(never_negative_fields(type(node)))


def _declaring_nodes(state):
    leaves = jax.tree_util.tree_flatten_with_path(state, is_leaf=_declares)[0]
    return [(kp, node) for kp, node in leaves if _declares(node)]


def _one_case_per_declaration():
    seen, out = set(), []
    for case in CASES:
        state = case.make().init(problems.quadratic_params())
        key = frozenset(type(node) for _, node in _declaring_nodes(state))
        if key and key not in seen:
            seen.add(key)
            out.append(case)
    return out


SELECTED = _one_case_per_declaration()


def test_the_selection_covers_the_adaptive_families():
    names = {
        cls.__name__ for c in SELECTED for _, n in _declaring_nodes(_init(c)) for cls in [type(n)]
    }
    assert {"ScaleByAdamState", "ScaleByAdagradState", "ScaleByRpropState"} <= names, names


def _init(case):
    return case.make().init(problems.quadratic_params())


def _trained(case, steps=4):
    tx = case.make()
    params = problems.quadratic_params()
    state = tx.init(params)
    for _ in range(steps):
        grads = jax.grad(problems.quadratic_loss)(params)
        updates, state = tx.update(grads, state, params)
        params = ol.apply_updates(params, updates)
    return state


def _negated(state, node, target):
    """``state`` with the first leaf of ``node``'s field ``target`` negated."""

    def edit(n):
        if n is not node:
            return n
        leaves, treedef = jax.tree_util.tree_flatten(getattr(n, target))
        leaves[0] = -abs(leaves[0]) - 1.0
        return n._replace(**{target: jax.tree_util.tree_unflatten(treedef, leaves)})

    return jax.tree.map(edit, state, is_leaf=_declares)


@pytest.mark.parametrize("case", SELECTED, ids=[c.id for c in SELECTED])
def test_declared_fields_stay_non_negative_and_a_negative_one_is_refused(case, tmp_path):
    state = _trained(case)
    path = tmp_path / "ck.npz"
    checked = 0
    for kp, node in _declaring_nodes(state):
        for field in sorted(never_negative_fields(type(node))):
            leaves = jax.tree.leaves(getattr(node, field))
            for leaf in leaves:
                arr = np.asarray(leaf)
                assert not (arr < 0).any(), f"{jax.tree_util.keystr(kp)}.{field} went negative"
            if not leaves:
                continue  # an absent slot (amsgrad's nu_max without amsgrad)
            checkpoint.save(path, _negated(state, node, field))
            with pytest.raises(checkpoint.CheckpointError, match=rf"\.{field}.* has negative"):
                checkpoint.restore(path, state)
            checked += 1
    assert checked
    # The untouched state restores.
    checkpoint.save(path, state)
    checkpoint.restore(path, state)


def test_a_declaration_names_existing_fields():
    from typing import NamedTuple

    from optimlab._core._base import never_negative

    class S(NamedTuple):
        nu: object

    with pytest.raises(ValueError, match=r"S has no field\(s\) \['mu'\]"):
        never_negative("mu")(S)
