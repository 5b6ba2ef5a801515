"""Array-valued options, as torch takes tensor ``lr`` and ``betas``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optimlab import optim


def test_one_element_arrays_are_scalars():
    grads = {"w": jnp.ones(2)}
    plain = optim.Adam({"w": jnp.ones(2)}, lr=0.01, betas=(0.9, 0.99))
    shaped = optim.Adam(
        {"w": jnp.ones(2)},
        lr=jnp.array([0.01]),
        betas=(jnp.full((1, 1, 1), 0.9), jnp.full((1, 1), 0.99)),
    )
    for opt in (plain, shaped):
        opt.step(grads)
        opt.step(grads)
    np.testing.assert_array_equal(np.asarray(shaped.params["w"]), np.asarray(plain.params["w"]))


def test_torch_messages_for_array_options():
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        optim.SGD({"w": jnp.ones(2)}, lr=jnp.array([0.1, 0.1]))
    with pytest.raises(ValueError, match="betas must be either both floats or both Tensors"):
        optim.Adam({"w": jnp.ones(2)}, betas=(0.9, jnp.array(0.99)))


def test_a_plain_tree_listing_one_array_twice_warns_as_torch():
    w = jnp.ones(2)
    with pytest.warns(UserWarning, match="a parameter group with duplicate parameters"):
        optim.SGD([w, w], lr=0.1)


@pytest.mark.parametrize(
    "ours_cls, torch_cls, kwargs",
    [
        (optim.Adam, "Adam", {}),
        (optim.AdamW, "AdamW", {"weight_decay": 0.1}),
        (optim.SGD, "SGD", {"momentum": 0.9}),
    ],
)
def test_a_torch_tensor_lr_trains_and_its_checkpoint_resumes(ours_cls, torch_cls, kwargs):
    # torch takes lr=torch.tensor(...) and keeps the tensor in its state dict: the
    # optimizer takes it too, and a checkpoint holding one continues torch's run.
    # The tensor is float64 like the params: torch computes lr / bias_correction in
    # the tensor's dtype, so a float32 tensor would round the step size to float32.
    torch = pytest.importorskip("torch")
    from tests.optim._pair import Pair

    torch_cls = getattr(torch.optim, torch_cls)
    with jax.enable_x64(True):
        pair = Pair(
            ours_cls,
            torch_cls,
            {"lr": torch.tensor(0.01, dtype=torch.float64), **kwargs},
            dtype="float64",
        )
        pair.run(3)
        assert torch.is_tensor(pair.ours.param_groups[0]["lr"])
        start = {n: t.detach().numpy().copy() for n, t in pair.tparams.items()}
        resumed = Pair(ours_cls, torch_cls, {"lr": 0.5, **kwargs}, dtype="float64", start=start)
        resumed.grad_fn = pair.grad_fn
        resumed.resume(pair.theirs.state_dict(), start=3, steps=3)


SCHEDULERS = {
    "StepLR": lambda M, o: M.StepLR(o, 3, 0.5),
    "CyclicLR": lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=4, cycle_momentum=False),
    "OneCycleLR": lambda M, o: M.OneCycleLR(o, 0.5, total_steps=30, cycle_momentum=False),
    "CosineAnnealingWarmRestarts": lambda M, o: M.CosineAnnealingWarmRestarts(o, 5),
    "LambdaLR": lambda M, o: M.LambdaLR(o, lambda e: 0.9**e),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_schedulers_write_a_tensor_lr_in_its_dtype_as_torch(name):
    # torch fills a tensor lr in place, so the schedule's values are rounded to the
    # tensor's dtype (float32): ours holds a float32 array. Bound: the 1e-6 relative
    # of the scheduler suite (torch's recursive forms drift by a few float32 ulps).
    torch = pytest.importorskip("torch")
    tp = torch.nn.Parameter(torch.zeros(2))
    theirs = torch.optim.SGD([tp], lr=torch.tensor(0.3))
    ours = optim.SGD([jnp.zeros(2)], lr=torch.tensor(0.3))
    s_theirs = SCHEDULERS[name](torch.optim.lr_scheduler, theirs)
    s_ours = SCHEDULERS[name](optim.lr_scheduler, ours)
    for k in range(30):
        theirs.step()
        ours.step([jnp.ones(2)])
        s_theirs.step()
        s_ours.step()
        lr = ours.param_groups[0]["lr"]
        assert np.asarray(lr).shape == () and np.asarray(lr).dtype == np.float32, (k, lr)
        np.testing.assert_allclose(
            np.asarray(lr), theirs.param_groups[0]["lr"].numpy(), rtol=1e-6, err_msg=f"step {k}"
        )


def test_a_one_element_torch_tensor_lr_is_a_scalar():
    torch = pytest.importorskip("torch")
    plain = optim.SGD({"w": jnp.ones(2)}, lr=0.5)
    shaped = optim.SGD({"w": jnp.ones(2)}, lr=torch.tensor([0.5]))
    for opt in (plain, shaped):
        opt.step({"w": jnp.ones(2)})
    np.testing.assert_array_equal(np.asarray(shaped.params["w"]), np.asarray(plain.params["w"]))
