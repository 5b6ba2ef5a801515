"""Test configuration: strict dtype promotion everywhere, warnings as errors (pyproject).

Each pytest-xdist worker runs XLA:CPU single-threaded, so two workers share the
two cores of a CI machine without oversubscribing them.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import jax

jax.config.update("jax_numpy_dtype_promotion", "strict")

# Scripts that tests run in a process of their own (the mesh workers ask for 8 host
# devices when imported; the foreach worker runs without FMA): pytest must not import
# them to look for doctests, or their setup would hold for the whole test process.
collect_ignore_glob = ["*_worker.py"]
