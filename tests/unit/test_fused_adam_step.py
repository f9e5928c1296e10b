"""FusedAdamStep (train/adam.py) against optimizer.step(): the same weights, moments and step counters, bit for bit."""

import pytest
import torch

from deeppot.train.adam import FusedAdamStep

SHAPES = [(3, 4), (4,), (1,), (5, 2)]


def twin_parameters():
    """Two equal lists of parameters; the last, empty, gets no gradient (as an absent bias in training)."""
    generator = torch.Generator().manual_seed(0)
    values = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in SHAPES]
    values.append(torch.zeros(0, dtype=torch.float64))
    return [[torch.nn.Parameter(v.clone()) for v in values] for _ in range(2)]


@pytest.mark.parametrize("optimizer_cls, weight_decay", [(torch.optim.Adam, 0.0), (torch.optim.Adam, 0.01),
                                                         (torch.optim.AdamW, 0.01)])
def test_lean_step_equals_optimizer_step_bit_for_bit(optimizer_cls, weight_decay):
    reference_params, lean_params = twin_parameters()
    reference = optimizer_cls(reference_params, lr=1e-3, weight_decay=weight_decay, fused=True)
    optimizer = optimizer_cls(lean_params, lr=1e-3, weight_decay=weight_decay, fused=True)
    lean = FusedAdamStep(optimizer)
    assert lean.applies()
    generator = torch.Generator().manual_seed(1)
    for step in range(5):
        for group in (reference.param_groups[0], optimizer.param_groups[0]):
            group["lr"] = 1e-3 * 0.9**step  # a schedule, read every step
        for a, b in zip(reference_params[:-1], lean_params[:-1]):
            a.grad = torch.randn(a.shape, generator=generator, dtype=torch.float64)
            b.grad = a.grad.clone()
        reference.step()
        lean()
    assert lean.lists is not None and len(lean.lists[0]) == len(SHAPES)  # the kernels ran after the first step
    for a, b in zip(reference_params, lean_params):
        assert torch.equal(a, b)
    expected, got = reference.state_dict()["state"], optimizer.state_dict()["state"]
    for index, state in expected.items():
        for name, value in state.items():
            assert torch.equal(got[index][name], value), name
    assert float(got[0]["step"]) == 5.0 and len(SHAPES) not in got  # the parameter without gradient has no state


def test_unfused_optimizer_runs_its_own_step():
    reference_params, lean_params = twin_parameters()
    reference = torch.optim.Adam(reference_params, lr=1e-2, foreach=False)
    lean = FusedAdamStep(torch.optim.Adam(lean_params, lr=1e-2, foreach=False))
    assert not lean.applies()
    for _ in range(2):
        for a, b in zip(reference_params[:-1], lean_params[:-1]):
            a.grad = torch.ones_like(a)
            b.grad = torch.ones_like(b)
        reference.step()
        lean()
    assert lean.lists is None
    assert all(torch.equal(a, b) for a, b in zip(reference_params, lean_params))


def test_step_counters_are_views_of_one_buffer_and_checkpoint_round_trips():
    """The counters count with one add (views of one buffer); a saved and reloaded state continues bit for bit."""
    import io

    reference_params, lean_params = twin_parameters()
    reference = torch.optim.Adam(reference_params, lr=1e-3, fused=True)
    optimizer = torch.optim.Adam(lean_params, lr=1e-3, fused=True)
    lean = FusedAdamStep(optimizer)
    generator = torch.Generator().manual_seed(2)

    def step(lean_step):
        for a, b in zip(reference_params[:-1], lean_params[:-1]):
            a.grad = torch.randn(a.shape, generator=generator, dtype=torch.float64)
            b.grad = a.grad.clone()
        reference.step()
        lean_step()

    for _ in range(3):
        step(lean)
    counters = [optimizer.state[p]["step"] for p in lean_params[:-1]]
    assert all(c.untyped_storage().data_ptr() == lean.steps.untyped_storage().data_ptr() for c in counters)
    assert [float(c) for c in counters] == [3.0] * len(SHAPES)
    saved = io.BytesIO()
    torch.save(optimizer.state_dict(), saved)
    saved.seek(0)
    resumed = torch.optim.Adam(lean_params, lr=1e-3, fused=True)
    resumed.load_state_dict(torch.load(saved))
    resumed_lean = FusedAdamStep(resumed)
    for _ in range(3):
        step(resumed_lean)
    assert all(torch.equal(a, b) for a, b in zip(reference_params, lean_params))
    expected, got = reference.state_dict()["state"], resumed.state_dict()["state"]
    for index, state in expected.items():
        assert all(torch.equal(got[index][name], value) for name, value in state.items())
    assert float(got[0]["step"]) == 6.0
