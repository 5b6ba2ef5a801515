"""Runs an ``optimlab.optim`` optimizer and its ``torch.optim`` twin side by side."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import torch

from optimlab import optim
from tests.reference.harness import SHAPES, init_params, make_grad_fn

# float64: both sides run the same IEEE operations; the residue is re-association
# (lr / bias correction), far below 1e-10. float32 (x64 on, so hyperparameters are
# float64 scalars like torch's Python floats): float32 rounding of the same
# operations in a different order, with an absolute floor for entries near zero.
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}
NP = {"float64": np.float64, "float32": np.float32}
TORCH = {"float64": torch.float64, "float32": torch.float32}


def to_torch(tree: Any) -> Any:
    """NumPy arrays inside a state dict as torch tensors (the rest unchanged)."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(tree.copy())
    if isinstance(tree, dict):
        return {k: to_torch(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [to_torch(v) for v in tree]
    return tree


def roundtrip(sd: Mapping[str, Any]) -> Any:
    """torch.save then torch.load(weights_only=True), as a checkpoint would."""
    buf = io.BytesIO()
    torch.save(to_torch(sd), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def assert_state_dicts_close(
    ours: Mapping[str, Any],
    theirs: Mapping[str, Any],
    *,
    rtol: float,
    atol: float,
    where: str = "",
    any_dtype: Sequence[str] = (),
) -> None:
    """Same layout, same group options, same state keys, values within tolerance."""
    assert set(ours) == {"state", "param_groups"}, where
    assert ours["param_groups"] == theirs["param_groups"], where
    assert sorted(ours["state"]) == sorted(theirs["state"]), where
    for i, entry in theirs["state"].items():
        assert list(ours["state"][i]) == list(entry), f"{where} state {i}"
        for key, value in entry.items():
            mine = ours["state"][i][key]
            theirs_np = value.detach().numpy() if torch.is_tensor(value) else np.asarray(value)
            assert isinstance(mine, np.ndarray), f"{where} {key}"
            if key not in any_dtype:
                assert mine.dtype == theirs_np.dtype, f"{where} state {i} {key}: {mine.dtype}"
            np.testing.assert_allclose(
                mine, theirs_np, rtol=rtol, atol=atol, err_msg=f"{where} state {i} {key}"
            )


class Pair:
    """An optimlab optimizer and a torch one over the same named parameters.

    ``groups`` is ``None`` (one tree / one plain list) or a list of
    ``(names, overrides)``; ours is built from :func:`optim.named_parameters` of
    one dict tree, torch's from ``(name, tensor)`` pairs in the same order.
    """

    def __init__(
        self,
        ours_cls: type,
        torch_cls: type,
        kwargs: Mapping[str, Any],
        *,
        dtype: str,
        groups: Sequence[tuple[Sequence[str], Mapping[str, Any]]] | None = None,
        start: Mapping[str, np.ndarray] | None = None,
        shapes=SHAPES,
        seed: int = 0,
    ):
        start = dict(start if start is not None else init_params(seed, shapes))
        self.dtype = dtype
        self.tol = TOL[dtype]
        self.any_dtype: Sequence[str] = ()
        self.grad_fn = make_grad_fn(seed + 1, shapes, 120)
        tree = {n: jnp.asarray(np.asarray(v, NP[dtype])) for n, v in start.items()}
        self.order = [str(n) for n, _ in optim.named_parameters(tree)]
        self.tparams = {
            n: torch.tensor(np.asarray(start[n], NP[dtype]), requires_grad=True) for n in self.order
        }
        if groups is None:
            self.ours = ours_cls(tree, **kwargs)
            self.theirs = torch_cls([self.tparams[n] for n in self.order], **kwargs)
        else:
            ours_groups, torch_groups = [], []
            for names, overrides in groups:
                ordered = [n for n in self.order if n in names]
                ours_groups.append(
                    {
                        "params": [(n, p) for n, p in optim.named_parameters(tree) if n in names],
                        **overrides,
                    }
                )
                torch_groups.append(
                    {"params": [(n, self.tparams[n]) for n in ordered], **overrides}
                )
            self.ours = ours_cls(ours_groups, **kwargs)
            self.theirs = torch_cls(torch_groups, **kwargs)

    def grads(self, k: int, skip: Sequence[str] = ()) -> tuple[dict, dict]:
        ours_np = {n: np.asarray(v) for n, v in self.ours.params.items()}
        theirs_np = {n: t.detach().numpy() for n, t in self.tparams.items()}
        g_ours = self.grad_fn(k, ours_np)
        g_theirs = self.grad_fn(k, theirs_np)
        cast = NP[self.dtype]
        return (
            {n: None if n in skip else jnp.asarray(np.asarray(g, cast)) for n, g in g_ours.items()},
            {
                n: None if n in skip else torch.tensor(np.asarray(g, cast))
                for n, g in g_theirs.items()
            },
        )

    def step(self, k: int, skip: Sequence[str] = ()) -> None:
        g_ours, g_theirs = self.grads(k, skip)
        for n, t in self.tparams.items():
            t.grad = g_theirs[n]
        self.theirs.step()
        self.ours.step(g_ours)

    def check(self, where: str = "") -> None:
        params = self.ours.params
        for n, t in self.tparams.items():
            assert params[n].dtype == jnp.dtype(NP[self.dtype])
            np.testing.assert_allclose(
                np.asarray(params[n]), t.detach().numpy(), **self.tol, err_msg=f"{where} param {n}"
            )
        assert_state_dicts_close(
            self.ours.state_dict(),
            self.theirs.state_dict(),
            **self.tol,
            where=where,
            any_dtype=self.any_dtype,
        )

    def run(
        self,
        steps: int,
        before: Callable[[int, Pair], None] | None = None,
        skip: Callable[[int], Sequence[str]] = lambda k: (),
    ) -> None:
        for k in range(steps):
            if before is not None:
                before(k, self)
            self.step(k, skip(k))
            self.check(f"step {k}")

    def resume(self, state_dict: Mapping[str, Any], start: int, steps: int) -> None:
        """Loads ``state_dict`` into both sides, then runs steps ``start..start+steps-1``."""
        self.theirs.load_state_dict(state_dict)
        self.ours.load_state_dict(state_dict)
        self.check("after load")
        for k in range(start, start + steps):
            self.step(k)
            self.check(f"resumed step {k}")

    def set_all(self, gi: int, **options: Any) -> None:
        """Changes group ``gi``'s options on both sides."""
        self.ours.param_groups[gi].update(options)
        self.theirs.param_groups[gi].update(options)
