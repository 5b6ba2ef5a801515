"""torch's ``OptimizerInfo`` database (``torch.testing._internal.common_optimizers``) as a suite.

Every config of every optimizer with a counterpart in ``optimlab.optim`` runs in
float64 and float32 through both libraries on the same gradients (parameters and
every state entry compared at each step, state dicts exchanged through files
midway), and every CPU error input must raise the same exception type with a
message matching torch's regex. Flags with no numerical meaning (``capturable``,
``differentiable``, ``foreach``) are given to optimlab and left out of torch's CPU
run (see ``tests/optim/_optimizer_db.py``). The configs that cannot match are in
:data:`LISTED`, each with its reason, and are run as strict expected failures, so
an entry that starts to match must leave the table. CI runs a representative
subset; the full sweep is marked slow.
"""

from __future__ import annotations

import re

import jax
import pytest

from tests.optim import _optimizer_db as db

# (optimizer regex, config or error-input desc regex, dtypes, reason): the one table.
FLOAT32_LR = (
    "torch.tensor(0.001) is a float32 tensor: with float64 parameters torch forms "
    "the lr-dependent scalars (step size, eta) from it in float32, optimlab in float64"
)
LISTED = [
    (r"Adam|AdamW", r"^(?!.*fused).*Tensor lr", ("float64",), FLOAT32_LR + " (fused: in float64)"),
    (r"Adamax|ASGD|RAdam", r"tensor LR", ("float64",), FLOAT32_LR),
    (r"Muon|SparseAdam", r"Tensor lr", ("float64",), FLOAT32_LR),
    (
        r"NAdam",
        r".*",
        ("float64",),
        "torch creates mu_product in its default dtype (float32) but casts it to the "
        "parameter's dtype when a state dict is loaded (load_state_dict casts every "
        "entry but 'step'); optimlab keeps float32, so the runs part after the midway "
        "exchange by float32 rounding of mu_product",
    ),
    (
        r"SparseAdam",
        r"default|non-default lr|maximize",
        ("float64",),
        "torch keeps SparseAdam's step as a Python int; after loading a state dict "
        "with a tensor step (optimlab's, as every other torch optimizer has), torch's "
        "bias corrections run in float32",
    ),
]
LISTED_ERRORS = [
    (r"SparseAdam", r"dense params required", "JAX arrays are dense: no sparse parameter exists"),
]


def _reason(name: str, desc: str, dtype: str | None) -> str | None:
    for opt, pattern, dtypes, reason in LISTED:
        if re.fullmatch(opt, name) and re.search(pattern, desc) and dtype in dtypes:
            return reason
    return None


def _error_reason(name: str, desc: str) -> str | None:
    for opt, pattern, reason in LISTED_ERRORS:
        if re.fullmatch(opt, name) and re.search(pattern, desc):
            return reason
    return None


CONFIGS = [
    (name, desc, kwargs, dtype)
    for dtype in ("float64", "float32")
    for name, desc, kwargs in db.configs()
    if not (name == "LBFGS" and dtype == "float32")  # its test problems run in float64 only
]


def _ci(index: int) -> bool:
    """The first config of each optimizer in both dtypes, the last in float64."""
    name, desc, _, dtype = CONFIGS[index]
    same = [c for c in CONFIGS if c[0] == name and c[3] == dtype]
    return desc == same[0][1] or (dtype == "float64" and desc == same[-1][1])


def _params(items, ci_pick, reason_of):
    out = []
    for i, item in enumerate(items):
        marks = [] if ci_pick(i) else [pytest.mark.slow]
        reason = reason_of(item)
        if reason is not None:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        ident = "-".join(str(x) for x in item if not isinstance(x, dict))
        out.append(pytest.param(*item, marks=marks, id=ident))
    return out


@pytest.mark.parametrize(
    "name,desc,kwargs,dtype",
    _params(CONFIGS, _ci, lambda c: _reason(c[0], c[1], c[3])),
)
def test_config_matches_torch(name, desc, kwargs, dtype):
    del desc
    with jax.enable_x64(True):
        db.run_config(name, kwargs, dtype)


_ERROR_INPUTS = {(name, i): e for name, i, e in db.error_inputs()}
ERRORS = [(name, i, e.optimizer_error_input.desc) for (name, i), e in _ERROR_INPUTS.items()]


@pytest.mark.parametrize(
    "name,index,desc",
    _params(ERRORS, lambda i: True, lambda c: _error_reason(c[0], c[2])),
)
def test_error_input_raises_like_torch(name, index, desc):
    del desc
    db.raises_like_torch(name, _ERROR_INPUTS[name, index])


def test_every_listed_entry_is_used():
    used = {
        i
        for name, desc, _, dtype in CONFIGS
        for i, (opt, pattern, dtypes, _) in enumerate(LISTED)
        if re.fullmatch(opt, name) and re.search(pattern, desc) and dtype in dtypes
    }
    assert used == set(range(len(LISTED)))
    used_errors = {
        i
        for name, _, desc in ERRORS
        for i, (opt, pattern, _) in enumerate(LISTED_ERRORS)
        if re.fullmatch(opt, name) and re.search(pattern, desc)
    }
    assert used_errors == set(range(len(LISTED_ERRORS)))
