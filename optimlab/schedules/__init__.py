"""Schedules: pure ``step -> value`` functions for any hyperparameter.

Every schedule is built by a factory that validates its arguments eagerly
(``ValueError`` naming the argument) and returns a pure function of the step:
jit- and vmap-able, valid for int32, int64, traced and fractional steps, computed
in floating point (float64 under ``jax_enable_x64``, else float32), so steps
beyond ``2**31`` never overflow. Pass one wherever an optimizer takes a number
(``optimlab.sgd(schedules.cosine_decay(0.1, 1000), momentum=...)``).

Two families:

- **optax's set** (same names without the ``_schedule`` suffix, same arguments and
  values as optax 0.2.8): :func:`constant`, :func:`linear`, :func:`polynomial`,
  :func:`exponential_decay`, :func:`cosine_decay`, :func:`piecewise_constant`,
  :func:`piecewise_interpolate`, :func:`warmup_constant`,
  :func:`warmup_cosine_decay`, :func:`warmup_exponential_decay`, :func:`sgdr`,
  :func:`join`, :func:`cosine_onecycle`, :func:`linear_onecycle`. They return
  values.
- **torch's set**, equal to ``torch.optim.lr_scheduler`` at every step
  (``step = last_epoch``). Absolute schedules take the base value first and return
  the learning rate (or momentum): :func:`step`, :func:`multistep`,
  :func:`exponential`, :func:`cosine_annealing`,
  :func:`cosine_annealing_warm_restarts`, :func:`cyclic`, :func:`cyclic_momentum`,
  :func:`one_cycle`, :func:`one_cycle_momentum`, :func:`polynomial_decay`,
  :func:`swa_anneal`. Factor schedules return a multiplier of the base learning
  rate: :func:`constant_factor`, :func:`linear_factor`, :func:`lambda_factor`,
  :func:`multiplicative` and :func:`chained` (a product of factors; an absolute
  schedule built with ``base_lr=1.0`` is its own factor). :func:`sequential`
  works on either kind.

========================  ==========================================================
torch scheduler           optimlab call (its value at ``last_epoch``)
========================  ==========================================================
``StepLR``                ``step(base_lr, step_size, gamma)``
``MultiStepLR``           ``multistep(base_lr, milestones, gamma)``
``ConstantLR``            ``base_lr * constant_factor(factor, total_iters)``
``LinearLR``              ``base_lr * linear_factor(start_factor, end_factor, total_iters)``
``ExponentialLR``         ``exponential(base_lr, gamma)``
``CosineAnnealingLR``     ``cosine_annealing(base_lr, T_max, eta_min)``
``CosineAnnealingWarm…``  ``cosine_annealing_warm_restarts(base_lr, T_0, T_mult, eta_min)``
``CyclicLR``              ``cyclic(base_lr, max_lr, ...)``, ``cyclic_momentum(...)``
``OneCycleLR``            ``one_cycle(max_lr, total_steps, ...)``, ``one_cycle_momentum(...)``
``PolynomialLR``          ``polynomial_decay(base_lr, total_iters, power)``
``LambdaLR``              ``base_lr * lambda_factor(lr_lambda)``
``MultiplicativeLR``      ``base_lr * multiplicative(lr_lambda)``
``SequentialLR``          ``sequential([f_0, f_1, ...], milestones)``
``ChainedScheduler``      ``base_lr * chained(factor_0, factor_1, ...)``
``SWALR``                 ``swa_anneal(base_lr, swa_lr, anneal_epochs, anneal_strategy)``
``ReduceLROnPlateau``     :func:`optimlab.reduce_on_plateau` (a transformation)
========================  ==========================================================
"""

from ._combinators import chained as chained
from ._combinators import join as join
from ._combinators import sequential as sequential
from ._cyclic import cosine_onecycle as cosine_onecycle
from ._cyclic import cyclic as cyclic
from ._cyclic import cyclic_momentum as cyclic_momentum
from ._cyclic import linear_onecycle as linear_onecycle
from ._cyclic import one_cycle as one_cycle
from ._cyclic import one_cycle_momentum as one_cycle_momentum
from ._optax_set import constant as constant
from ._optax_set import cosine_decay as cosine_decay
from ._optax_set import exponential_decay as exponential_decay
from ._optax_set import linear as linear
from ._optax_set import piecewise_constant as piecewise_constant
from ._optax_set import piecewise_interpolate as piecewise_interpolate
from ._optax_set import polynomial as polynomial
from ._torch_set import constant_factor as constant_factor
from ._torch_set import cosine_annealing as cosine_annealing
from ._torch_set import cosine_annealing_warm_restarts as cosine_annealing_warm_restarts
from ._torch_set import exponential as exponential
from ._torch_set import lambda_factor as lambda_factor
from ._torch_set import linear_factor as linear_factor
from ._torch_set import multiplicative as multiplicative
from ._torch_set import multistep as multistep
from ._torch_set import polynomial_decay as polynomial_decay
from ._torch_set import step as step
from ._torch_set import swa_anneal as swa_anneal
from ._warmup import sgdr as sgdr
from ._warmup import warmup_constant as warmup_constant
from ._warmup import warmup_cosine_decay as warmup_cosine_decay
from ._warmup import warmup_exponential_decay as warmup_exponential_decay
