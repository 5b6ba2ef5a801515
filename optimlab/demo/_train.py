"""Train a small MLP on scikit-learn's bundled handwritten digits with optimlab.

The optimizer is ``chain(clip_by_global_norm(1.0), adamw(warmup + cosine))``;
the learning rate actually used is read back from the optimizer state at every
step. Needs the ``demo`` extra (scikit-learn, matplotlib, tqdm).
"""

from __future__ import annotations

import argparse
import itertools
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import optimlab


def warmup_cosine(peak: float, warmup: int, total: int, end: float = 0.0):
    """Linear warmup from 0 to ``peak`` over ``warmup`` steps, then cosine decay to ``end``."""
    try:
        from optimlab import schedules

        return schedules.warmup_cosine_decay(0.0, peak, warmup, total, end)
    except (ImportError, AttributeError):  # pragma: no cover - before schedules existed
        pass

    def schedule(step):
        s = jnp.asarray(step).astype(jnp.float32)
        warm = peak * s / warmup
        frac = jnp.clip((s - warmup) / (total - warmup), 0.0, 1.0)
        cos = end + 0.5 * (peak - end) * (1 + jnp.cos(math.pi * frac))
        return jnp.where(s < warmup, warm, cos)

    return schedule


def init_mlp(key, sizes):
    params = []
    for k, (n_in, n_out) in zip(
        jax.random.split(key, len(sizes) - 1), itertools.pairwise(sizes), strict=True
    ):
        w = jax.random.normal(k, (n_in, n_out), jnp.float32) * jnp.sqrt(2.0 / n_in)
        params.append({"w": w, "b": jnp.zeros((n_out,), jnp.float32)})
    return params


def forward(params, x):
    for layer in params[:-1]:
        x = jax.nn.gelu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss_fn(params, x, y):
    logits = forward(params, x)
    return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(y, 10), axis=-1))


def accuracy(params, x, y):
    return float(jnp.mean(jnp.argmax(forward(params, x), -1) == y))


def main(argv: list[str] | None = None) -> int:
    """Runs the demo; returns a process exit code (1 if accuracy is below 95%)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from tqdm import tqdm

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("demo_output"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    images, labels = load_digits(return_X_y=True)  # 1,797 8x8 images shipped inside scikit-learn
    x = (images / 16.0).astype(np.float32)
    y = labels.astype(np.int32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.25, random_state=args.seed, stratify=y
    )
    steps_per_epoch = len(x_tr) // args.batch_size
    total = args.epochs * steps_per_epoch

    schedule = warmup_cosine(args.lr, warmup=2 * steps_per_epoch, total=total)
    tx = optimlab.chain(
        optimlab.clip_by_global_norm(1.0),
        optimlab.adamw(learning_rate=schedule, weight_decay=1e-4),
    )
    params = init_mlp(jax.random.PRNGKey(args.seed), [64, 128, 128, 10])
    state = tx.init(params)

    @jax.jit
    def train_step(params, state, xb, yb):
        loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
        updates, state = tx.update(grads, state, params)
        return optimlab.apply_updates(params, updates), state, loss

    rng = np.random.default_rng(args.seed)
    losses, lrs = [], []
    start = time.perf_counter()
    bar = tqdm(range(args.epochs), desc="training", unit="epoch")
    for _ in bar:
        order = rng.permutation(len(x_tr))
        for i in range(steps_per_epoch):
            idx = order[i * args.batch_size : (i + 1) * args.batch_size]
            params, state, loss = train_step(params, state, x_tr[idx], y_tr[idx])
            losses.append(float(loss))
            lrs.append(float(optimlab.hyperparams(state)["learning_rate"]))
        bar.set_postfix(loss=f"{np.mean(losses[-steps_per_epoch:]):.4f}", lr=f"{lrs[-1]:.2e}")
    elapsed = time.perf_counter() - start

    acc = accuracy(params, x_te, y_te)
    peak = max(lrs)
    print(f"test accuracy: {acc:.2%} on {len(x_te)} held-out digits ({elapsed:.1f} s)")
    print(f"learning rate read from the optimizer state: peak {peak:.2e}, last {lrs[-1]:.2e}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax1.plot(losses, lw=0.8)
    ax1.set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
    ax2.plot(lrs)
    ax2.set(xlabel="step", ylabel="learning rate", title="learning rate (from state)")
    fig.suptitle(f"optimlab demo: MLP on digits, test accuracy {acc:.2%}")
    fig.tight_layout()
    path = args.out / "training.png"
    fig.savefig(path, dpi=120)
    print(f"plot saved to {path}")
    return 0 if acc >= 0.95 else 1
