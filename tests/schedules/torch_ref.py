"""Runs real torch schedulers and records their learning rates (and momenta) step by step."""

import math

import numpy as np
import torch
from torch.optim import lr_scheduler as tls
from torch.optim import swa_utils

BASE_LR = 0.1


def _optimizer(kind="sgd", lr=BASE_LR):
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    if kind == "adam":
        return torch.optim.Adam([p], lr=lr)
    return torch.optim.SGD([p], lr=lr, momentum=0.9)


def run(make, n, *, kind="sgd", lr=BASE_LR, epochs=None):
    """``(lrs, momenta)``: ``get_last_lr()`` at ``last_epoch = 0 .. n-1`` (or at ``epochs``)."""
    opt = _optimizer(kind, lr)
    sched = make(opt)
    lrs, moms = [], []

    def record():
        lrs.append(sched.get_last_lr()[0])
        g = opt.param_groups[0]
        moms.append(g["betas"][0] if "betas" in g else g["momentum"])

    record()
    for k in range(1, n) if epochs is None else epochs:
        opt.step()
        if epochs is None:
            sched.step()
        else:
            sched.step(k)
        record()
    return np.asarray(lrs, np.float64), np.asarray(moms, np.float64)


def sequential(makers, milestones, n):
    def make(opt):
        return tls.SequentialLR(opt, [m(opt) for m in makers], milestones)

    return run(make, n)[0]


def chained(makers, n):
    def make(opt):
        return tls.ChainedScheduler([m(opt) for m in makers])

    return run(make, n)[0]


def plateau(metrics, **kwargs):
    """Learning rates after each ``step(metric)`` (NaN metrics are skipped, optimlab's rule)."""
    opt = _optimizer()
    sched = tls.ReduceLROnPlateau(opt, **kwargs)
    out = []
    for m in metrics:
        if not math.isnan(m):
            sched.step(m)
        out.append(sched.get_last_lr()[0])
    return np.asarray(out, np.float64), sched


__all__ = ["BASE_LR", "run", "sequential", "chained", "plateau", "tls", "swa_utils"]
