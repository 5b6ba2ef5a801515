from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import optimlab


@dataclasses.dataclass(frozen=True)
class Case:
    """One optimizer configuration run through every conformance check.

    Attributes:
        id: unique test id.
        make: builds the transformation (called fresh in each test).
        lr_name: name of the learning-rate hyperparameter in the state, or None.
        converge_steps: steps for the quadratic convergence check.
        quadratic_tol: final distance to the optimum allowed on the quadratic.
        rosenbrock: also check convergence on Rosenbrock: (make, steps, tol), or None.
        zero_grad_zero_update: zero gradients give exactly zero updates.
        complex_ok: supports complex params; otherwise init must raise a clear error.
        needs_params: update requires params.
        tags: free-form labels (e.g. "torch", "optax").
        extra_args: ``params -> dict`` of the keyword arguments the update needs
            (``value=``...). ``make()`` computes them itself; the interop checks
            pass them from outside, through optax's wrappers, and they take
            precedence.
    """

    id: str
    make: Callable[[], Any]
    lr_name: str | None = "learning_rate"
    converge_steps: int = 300
    quadratic_tol: float = 1e-2
    rosenbrock: tuple[Callable[[], Any], int, float] | None = None
    zero_grad_zero_update: bool = True
    complex_ok: bool = False
    needs_params: bool = False
    tags: tuple[str, ...] = ()
    extra_args: Callable[[Any], dict[str, Any]] | None = None


@dataclasses.dataclass(frozen=True)
class ErrorCase:
    """One invalid input: calling ``fn`` raises ``exc`` with a message matching ``match``.

    ``stage`` is where the error surfaces: "construct", "init", "update", "load",
    "schedule" or "set".
    """

    id: str
    fn: Callable[[], Any]
    stage: str
    exc: type[BaseException]
    match: str


def after_factory(fn: Callable[[], Any], match: str) -> str:
    """``match`` (anchored with ``^``) expected after the name of the factory ``fn`` calls.

    For a case ``lambda: ol.<factory>(...)`` whose message is a shared or torch-worded
    one: every public function names itself first (``"adam: Invalid learning rate:
    -1.0"``).
    """
    names = fn.__code__.co_names  # ("ol", "<factory>", ...) for `lambda: ol.<factory>(...)`
    assert names[:1] == ("ol",) and callable(getattr(optimlab, names[1], None)), names
    assert match.startswith("^"), match
    return f"^{names[1]}: {match[1:]}"
