"""Test configuration: strict dtype promotion everywhere, warnings as errors (pyproject).

Each pytest-xdist worker runs XLA:CPU single-threaded, so two workers share the
two cores of a CI machine without oversubscribing them.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import jax

jax.config.update("jax_numpy_dtype_promotion", "strict")
