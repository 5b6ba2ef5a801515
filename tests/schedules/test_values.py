"""Every schedule factory refuses a value that is not a finite real number, when built.

Generated from ``optimlab.schedules``: each argument annotated ``ArrayLike`` or
``float`` (a value, a rate, a factor) is given NaN, an infinity and a string in
turn. A NaN value would make the schedule return NaN at every step, which no
optimizer downstream can tell from a real value, so it is refused with the
factory's and the argument's names before the schedule exists.
"""

from __future__ import annotations

import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optimlab import schedules


def _value_arguments():
    for name in sorted(n for n in dir(schedules) if not n.startswith("_")):
        f = getattr(schedules, name)
        if not inspect.isfunction(f):
            continue
        for p in inspect.signature(f).parameters.values():
            if p.annotation in ("ArrayLike", "ArrayLike | None", "float", "float | None"):
                yield name, f, p.name


_ARGS = list(_value_arguments())


def test_every_schedule_value_is_probed():
    probed = {(name, arg) for name, _, arg in _ARGS}
    assert {("constant", "value"), ("cosine_decay", "init_value"), ("cyclic", "gamma")} <= probed
    assert len(_ARGS) > 50


@pytest.mark.parametrize(
    "bad, exc, message",
    [
        (float("nan"), ValueError, r"Invalid {label}: nan \(must be finite\)"),
        (-float("inf"), ValueError, r"Invalid {label}: -inf \(must be finite\)"),
        (np.array([0.1, np.nan]), ValueError, r"Invalid {label}: .* \(must be finite\)"),
        ("0.1", TypeError, r"{arg} must be a real number \(or an array of them\), got str"),
        (True, TypeError, r"{arg} must be a real number \(or an array of them\), got bool"),
    ],
    ids=["nan", "-inf", "array with nan", "str", "bool"],
)
def test_a_value_that_is_not_a_finite_number_is_refused(bad, exc, message):
    for name, f, arg in _ARGS:
        label = arg if arg == "value" else f"{arg} value"  # "Invalid value", not "value value"
        with pytest.raises(
            exc, match=rf"^{re.escape(name)}: " + message.format(arg=arg, label=label)
        ):
            f(**{arg: bad})


def test_traced_and_batched_values_are_not_checked_eagerly():
    values = jnp.array([0.1, 0.2])
    batched = schedules.polynomial(values, 0.0, 1.0, 10)(5)
    np.testing.assert_allclose(batched, [0.05, 0.1], rtol=1e-6)
    swept = jax.vmap(lambda v: schedules.cosine_decay(v, 10)(10))(values)
    np.testing.assert_allclose(swept, [0.0, 0.0], atol=1e-7)
