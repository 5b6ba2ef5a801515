"""torch's ``torch.optim.swa_utils`` for JAX parameter pytrees.

:class:`AveragedModel` keeps SWA or EMA weights of a parameter tree (jitted
averaging with the numerics of :func:`optimlab.swa_params` /
:func:`optimlab.ema_params`), :class:`SWALR` anneals the learning rate to the SWA
value (:func:`optimlab.schedules.swa_anneal`), and :func:`update_bn` recomputes
Flax ``batch_stats`` for the averaged weights.

Examples:
    >>> from optimlab import optim
    >>> from optimlab.optim import swa_utils
    >>> opt = optim.SGD({"w": jnp.ones(2)}, lr=0.1)
    >>> swa_model = swa_utils.AveragedModel(opt.params)
    >>> swa_scheduler = swa_utils.SWALR(opt, swa_lr=0.05)
    >>> for epoch in range(3):
    ...     opt.step({"w": jnp.ones(2)})
    ...     swa_model.update_parameters(opt.params)
    ...     swa_scheduler.step()
    >>> int(swa_model.n_averaged)
    3
"""

from ._swa_utils import SWALR as SWALR
from ._swa_utils import AveragedModel as AveragedModel
from ._swa_utils import get_ema_avg_fn as get_ema_avg_fn
from ._swa_utils import get_ema_multi_avg_fn as get_ema_multi_avg_fn
from ._swa_utils import get_swa_avg_fn as get_swa_avg_fn
from ._swa_utils import get_swa_multi_avg_fn as get_swa_multi_avg_fn
from ._swa_utils import update_bn as update_bn

__all__ = [
    "AveragedModel",
    "update_bn",
    "SWALR",
    "get_ema_multi_avg_fn",
    "get_swa_multi_avg_fn",
    "get_ema_avg_fn",
    "get_swa_avg_fn",
]
