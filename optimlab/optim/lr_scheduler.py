"""torch's ``torch.optim.lr_scheduler`` over :mod:`optimlab.schedules`: the same classes.

Each scheduler drives an :class:`optimlab.optim.Optimizer` as torch's drives a
torch optimizer (``last_epoch``, ``initial_lr``, the step at construction,
``get_last_lr()``, ``state_dict()`` with torch's keys, stacking, ``SequentialLR``
and ``ChainedScheduler``), with values from the closed forms of
:mod:`optimlab.schedules`. Learning rates set in ``param_groups`` are fed to the
optimizer's jitted step as data: scheduling never recompiles it.

Examples:
    >>> from optimlab import optim
    >>> from optimlab.optim import lr_scheduler
    >>> opt = optim.SGD({"w": jnp.zeros(2)}, lr=0.1)
    >>> sched = lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    >>> for epoch in range(60):
    ...     opt.step({"w": jnp.ones(2)})
    ...     sched.step()
    >>> round(sched.get_last_lr()[0], 6)
    0.001
"""

from ._lr_composite import ChainedScheduler as ChainedScheduler
from ._lr_composite import ReduceLROnPlateau as ReduceLROnPlateau
from ._lr_composite import SequentialLR as SequentialLR
from ._lr_cyclic import CosineAnnealingLR as CosineAnnealingLR
from ._lr_cyclic import CosineAnnealingWarmRestarts as CosineAnnealingWarmRestarts
from ._lr_cyclic import CyclicLR as CyclicLR
from ._lr_cyclic import OneCycleLR as OneCycleLR
from ._lr_multiplicative import ConstantLR as ConstantLR
from ._lr_multiplicative import ExponentialLR as ExponentialLR
from ._lr_multiplicative import LinearLR as LinearLR
from ._lr_multiplicative import MultiStepLR as MultiStepLR
from ._lr_multiplicative import PolynomialLR as PolynomialLR
from ._lr_multiplicative import StepLR as StepLR
from ._lr_scheduler import LambdaLR as LambdaLR
from ._lr_scheduler import LRScheduler as LRScheduler
from ._lr_scheduler import MultiplicativeLR as MultiplicativeLR

__all__ = [
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "SequentialLR",
    "CosineAnnealingLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
    "CyclicLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "PolynomialLR",
    "LRScheduler",
]
