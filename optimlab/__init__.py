"""optimlab: functional, composable optimizers for JAX.

Optimizers are pure ``(init, update)`` pairs over pytrees with optax's protocol;
every numeric hyperparameter lives in the optimizer state. The torch.optim
compatibility layer is :mod:`optimlab.optim`; schedules are in
:mod:`optimlab.schedules`.
"""

from ._accumulate import AccumulateState as AccumulateState
from ._accumulate import accumulate as accumulate
from ._adafactor import ScaleByFactoredRmsState as ScaleByFactoredRmsState
from ._adafactor import ScaleByTorchAdafactorState as ScaleByTorchAdafactorState
from ._adafactor import adafactor as adafactor
from ._adafactor import scale_by_factored_rms as scale_by_factored_rms
from ._adafactor import scale_by_torch_adafactor as scale_by_torch_adafactor
from ._adafactor import torch_adafactor as torch_adafactor
from ._adam import ScaleByAdamState as ScaleByAdamState
from ._adam import adam as adam
from ._adam import adamw as adamw
from ._adam import amsgrad as amsgrad
from ._adam import scale_by_adam as scale_by_adam
from ._asgd import ScaleByAsgdState as ScaleByAsgdState
from ._asgd import asgd as asgd
from ._asgd import asgd_averaged_params as asgd_averaged_params
from ._asgd import scale_by_asgd as scale_by_asgd
from ._averaging import AveragedParamsState as AveragedParamsState
from ._averaging import averaged_params as averaged_params
from ._averaging import ema_params as ema_params
from ._averaging import swa_params as swa_params
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
from ._lookahead import LookaheadState as LookaheadState
from ._lookahead import lookahead as lookahead
from ._masking import MaskedState as MaskedState
from ._masking import freeze as freeze
from ._masking import masked as masked
from ._masking import set_to_zero as set_to_zero
from ._misc import ConditionallyTransformState as ConditionallyTransformState
from ._misc import MonitorState as MonitorState
from ._misc import centralize as centralize
from ._misc import conditionally_transform as conditionally_transform
from ._misc import monitor as monitor
from ._misc import monitored as monitored
from ._misc import named_chain as named_chain
from ._misc import scale_by_schedule as scale_by_schedule
from ._muon import ScaleByMuonState as ScaleByMuonState
from ._muon import muon as muon
from ._muon import newton_schulz as newton_schulz
from ._muon import scale_by_muon as scale_by_muon
from ._partition import PartitionState as PartitionState
from ._partition import extend_state as extend_state
from ._partition import partition as partition
from ._partition import partition_overrides as partition_overrides
from ._robust import SkipNonfiniteState as SkipNonfiniteState
from ._robust import ZeroNansState as ZeroNansState
from ._robust import adaptive_grad_clip as adaptive_grad_clip
from ._robust import clip_by_block_rms as clip_by_block_rms
from ._robust import per_example_global_norm_clip as per_example_global_norm_clip
from ._robust import skip_nonfinite as skip_nonfinite
from ._robust import zero_nans as zero_nans
from ._rprop import ScaleByRpropState as ScaleByRpropState
from ._rprop import rprop as rprop
from ._rprop import scale_by_rprop as scale_by_rprop
from ._scale import ScaleByScheduleState as ScaleByScheduleState
from ._scale import add_decayed_weights as add_decayed_weights
from ._scale import scale as scale
from ._scale import scale_by_learning_rate as scale_by_learning_rate
from ._sgd import TraceState as TraceState
from ._sgd import sgd as sgd
from ._sgd import trace as trace
from ._sparse_adam import ScaleBySparseAdamState as ScaleBySparseAdamState
from ._sparse_adam import scale_by_sparse_adam as scale_by_sparse_adam
from ._sparse_adam import sparse_adam as sparse_adam

__version__ = "0.1.0"
