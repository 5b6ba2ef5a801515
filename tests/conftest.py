"""Test configuration: strict dtype promotion everywhere, warnings as errors (pyproject)."""

import os

os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import jax  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
