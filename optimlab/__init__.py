"""optimlab: functional, composable optimizers for JAX.

Optimizers are pure ``(init, update)`` pairs over pytrees with optax's protocol;
every numeric hyperparameter lives in the optimizer state. The torch.optim
compatibility layer is :mod:`optimlab.optim`; schedules are in
:mod:`optimlab.schedules`.
"""

from ._adam import ScaleByAdamState as ScaleByAdamState
from ._adam import adam as adam
from ._adam import adamw as adamw
from ._adam import amsgrad as amsgrad
from ._adam import scale_by_adam as scale_by_adam
from ._base import EmptyState as EmptyState
from ._base import GradientTransformation as GradientTransformation
from ._base import apply_updates as apply_updates
from ._base import chain as chain
from ._base import identity as identity
from ._base import safe_increment as safe_increment
from ._clipping import clip as clip
from ._clipping import clip_by_global_norm as clip_by_global_norm
from ._hyperparams import HyperparamsState as HyperparamsState
from ._hyperparams import hyperparams as hyperparams
from ._hyperparams import set_hyperparams as set_hyperparams
from ._hyperparams import with_hyperparams as with_hyperparams
from ._scale import ScaleByScheduleState as ScaleByScheduleState
from ._scale import add_decayed_weights as add_decayed_weights
from ._scale import scale as scale
from ._scale import scale_by_learning_rate as scale_by_learning_rate
from ._sgd import TraceState as TraceState
from ._sgd import sgd as sgd
from ._sgd import trace as trace

__version__ = "0.1.0"
