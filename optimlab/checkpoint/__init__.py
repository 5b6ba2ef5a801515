"""Safe optimizer checkpoints: npz arrays plus a JSON manifest, atomic writes, no pickle.

:func:`save` writes any optimizer state (a pytree of arrays); :func:`restore`
reads it back into the structure of a template (the ``init`` state or its
``jax.eval_shape``), validating structure, shapes and dtypes before returning.
:func:`save_tree` / :func:`load_tree` store nested containers of arrays,
numbers and strings, such as an ``optimlab.optim`` ``state_dict()``.
"""

from ._io import CheckpointError as CheckpointError
from ._io import read_manifest as read_manifest
from ._io import restore as restore
from ._io import save as save
from ._trees import load_tree as load_tree
from ._trees import save_tree as save_tree

__all__ = ["CheckpointError", "load_tree", "read_manifest", "restore", "save", "save_tree"]
