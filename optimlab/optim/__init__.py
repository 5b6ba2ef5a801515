"""torch.optim's interface over optimlab's pure optimizers.

Stateful classes with torch's names, signatures, defaults, ``param_groups`` and
``state_dict`` layout (a torch checkpoint loads here and the other way round),
each a thin shell over an optimlab alias: every ``step`` is one jitted call, and
changing ``param_groups[i]["lr"]`` (or any numeric option) never recompiles.
``docs/torch_mapping.md`` maps torch's names to optimlab's.

Examples:
    >>> from optimlab import optim
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> opt = optim.SGD(params, lr=0.1)
    >>> def loss_fn(p):
    ...     return jnp.sum(p["w"] ** 2)
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     loss = opt.backward(loss_fn)
    ...     opt.step()
    >>> opt.params["w"].round(3)
    Array([0.512, 1.024], dtype=float32)
"""

from . import lr_scheduler as lr_scheduler
from . import swa_utils as swa_utils
from ._adafactor import Adafactor as Adafactor
from ._adam import Adam as Adam
from ._adam import AdamW as AdamW
from ._adamax import Adamax as Adamax
from ._adaptive import ASGD as ASGD
from ._adaptive import Adadelta as Adadelta
from ._adaptive import Adagrad as Adagrad
from ._adaptive import NAdam as NAdam
from ._adaptive import RAdam as RAdam
from ._adaptive import RMSprop as RMSprop
from ._adaptive import Rprop as Rprop
from ._hooks import RemovableHandle as RemovableHandle
from ._lbfgs import LBFGS as LBFGS
from ._muon import Muon as Muon
from ._optimizer import Optimizer as Optimizer
from ._params import named_parameters as named_parameters
from ._serialization import CheckpointFormatError as CheckpointFormatError
from ._serialization import SavableArray as SavableArray
from ._serialization import load as load
from ._serialization import save as save
from ._sgd import SGD as SGD
from ._sparse_adam import SparseAdam as SparseAdam
from ._spec import STEP as STEP
from ._spec import Spec as Spec
from ._spec import StateKey as StateKey
from ._spec import required as required
from ._state_dict import LoadResult as LoadResult
