"""Names every docstring example may use without importing them.

As in JAX's own docstrings, the examples assume ``import jax``,
``import jax.numpy as jnp``, ``import numpy as np`` and ``import optimlab``.
jax is imported inside the fixture, after ``tests/conftest.py`` has configured it.
"""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _docstring_names(doctest_namespace: dict[str, object]) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import optimlab

    doctest_namespace.update(jax=jax, jnp=jnp, np=np, optimlab=optimlab)
