"""Integration tests run as a user's program does: JAX's default dtype promotion."""

import jax
import pytest


@pytest.fixture(autouse=True)
def _user_defaults():
    with jax.numpy_dtype_promotion("standard"):
        yield
