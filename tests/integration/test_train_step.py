"""The compiled training step (deeppot.train.step) against the eager step: same loss trajectory, same weights,
bit-identical restart, and the choice of step (training/fast_step)."""

import logging

import numpy as np
import pytest
import torch

import deeppot.train.step as step_module
from deeppot.config import validate_input
from deeppot.model.pairs import sorted_type_counts
from deeppot.train.step import AUTO_MIN_STEPS, CompiledEnergyStep, batch_guards_only, choose_fast_step
from deeppot.train.trainer import Trainer, batch_to_torch
from helpers import small_water_input


def water_input(fast_step: str, numb_steps: int = 6, save_freq: int = 3) -> dict:
    """The small water input (energy and force loss) with the step chosen by ``fast_step``."""
    config = small_water_input(numb_steps=numb_steps, disp_freq=1, save_freq=save_freq)
    config["training"]["fast_step"] = fast_step
    return config


def test_compiled_step_follows_the_eager_trajectory_and_restarts_bit_identically(tmp_path, monkeypatch):
    """6 steps eager and compiled (its graph rewritten by StepGraphPass, its fitting nets on type slices): metrics of
    every step and the weights equal to 1e-10; a compiled run restarted from its step-3 checkpoint ends with the
    weights of the uninterrupted compiled run, bit for bit."""
    type_counts = []  # what the compiled step passed to the fitting: the water frames are sorted by type
    monkeypatch.setattr(step_module, "sorted_type_counts",
                        lambda atype, ntypes: type_counts.append(sorted_type_counts(atype, ntypes)) or type_counts[-1])
    eager = Trainer(validate_input(water_input("off")), output_dir=tmp_path)
    (tmp_path / "fast").mkdir()
    fast = Trainer(validate_input(water_input("on")), output_dir=tmp_path / "fast")
    assert eager.fast_step is None and isinstance(fast.fast_step, CompiledEnergyStep)
    expected = [eager.train_step(step)[0] for step in range(6)]
    got = []
    with torch._inductor.config.patch(force_disable_caches=True):  # compiled here, so the graph pass runs
        for step in range(6):
            got.append(fast.train_step(step)[0])
            if step == 2:
                checkpoint = fast.save(3)
    assert fast.fast_step.attempts[0][0] == "compiled, C++ wrapper"  # it compiled, no fallback was taken
    assert len(type_counts) >= 6 and all(counts is not None and sum(counts) > 0 for counts in type_counts), type_counts
    replaced = fast.fast_step.graph_pass.replaced  # deeppot.nn.graph_passes rewrote the graph that ran
    assert all(count > 0 for count in replaced.values()), replaced  # each kind of rewrite applied
    for row_expected, row_got in zip(expected, got):
        assert row_got.keys() == row_expected.keys()
        for name, value in row_expected.items():
            assert row_got[name] == pytest.approx(value, rel=1e-10, abs=0), name
    weights = eager.model.state_dict()
    for name, value in fast.model.state_dict().items():
        torch.testing.assert_close(value, weights[name], rtol=1e-10, atol=1e-13, msg=name)
    assert fast.optimizer.state_dict()["state"].keys() == eager.optimizer.state_dict()["state"].keys()

    resumed = Trainer(validate_input(water_input("on")), restart=str(checkpoint),
                      output_dir=tmp_path / "fast")
    assert resumed.start_step == 3 and resumed.fast_step is not None
    resumed.run()
    final = fast.model.state_dict()
    assert all(torch.equal(value, final[name]) for name, value in resumed.model.state_dict().items())


def test_choice_of_step_is_logged(tmp_path, caplog):
    trainer = Trainer(validate_input(water_input("off")), output_dir=tmp_path)
    model, loss = trainer.model, trainer.loss
    with caplog.at_level(logging.INFO, logger="deeppot"):
        assert choose_fast_step("auto", AUTO_MIN_STEPS - 1, model, loss, None) is None
        assert "numb_steps >= %d" % AUTO_MIN_STEPS in caplog.text
        assert isinstance(choose_fast_step("auto", AUTO_MIN_STEPS, model, loss, None), CompiledEnergyStep)
        assert choose_fast_step("off", 10**6, model, loss, None) is None
        caplog.clear()
        assert choose_fast_step("on", 10**6, model, loss, {"output_prec": "float32"}) is None
        assert "exact in float64 only" in caplog.text and caplog.records[-1].levelno == logging.WARNING
        model.descriptor.type_name = "se_e3"  # an instance attribute, for this check only
        caplog.clear()
        assert choose_fast_step("on", 10**6, model, loss, None) is None
        assert "se_e2_a, se_e2_r" in caplog.text


def test_fast_step_key_is_validated():
    config = water_input("sometimes")
    with pytest.raises(Exception, match="fast_step"):
        validate_input(config)


def test_step_that_fails_to_compile_runs_uncompiled_with_the_eager_numbers(tmp_path, caplog):
    eager = Trainer(validate_input(water_input("off")), output_dir=tmp_path)
    fallback = Trainer(validate_input(water_input("off")), output_dir=tmp_path)
    fallback.fast_step = CompiledEnergyStep(fallback.model, fallback.loss)

    def no_compiler(*inputs):
        raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found")

    attempts = fallback.fast_step.attempts
    assert [label for label, _ in attempts] == ["compiled, C++ wrapper", "compiled, Python wrapper", "uncompiled"]
    attempts[0] = (attempts[0][0], no_compiler)
    attempts[1] = (attempts[1][0], no_compiler)
    with caplog.at_level(logging.WARNING, logger="deeppot"):
        for step in range(2):
            expected, got = eager.train_step(step)[0], fallback.train_step(step)[0]
            assert got == pytest.approx(expected, rel=1e-10, abs=0)
    assert [label for label, _ in attempts] == ["uncompiled"]
    assert "(compiled, C++ wrapper) failed to compile (RuntimeError: InvalidCxxCompiler" in caplog.text
    assert "continues with it compiled, Python wrapper" in caplog.text
    assert "continues with it uncompiled" in caplog.text


def test_batches_of_other_shapes_and_orders_get_their_own_graph(tmp_path):
    """The step compiles with the guards on the model, loss and parameters dropped (batch_guards_only): a batch of
    two frames after one of one frame, and a frame with its atoms out of type order (no type slices), still each
    run a graph of their own and give the uncompiled function's loss and gradients."""
    fast = Trainer(validate_input(water_input("on")), output_dir=tmp_path)
    step = fast.fast_step
    sampler = fast.train_data.sampler
    first = sampler.next_batch()
    second = sampler.next_batch()
    while second["system_index"] != first["system_index"] or second["frame_index"][0] == first["frame_index"][0]:
        second = sampler.next_batch()
    two_frames = {name: np.concatenate([value, second[name]]) if isinstance(value, np.ndarray) else value
                  for name, value in first.items()}
    order = np.random.default_rng(0).permutation(first["natoms"])  # the atoms out of type order
    shuffled = {name: value[:, order] if name in ("coord", "atype", "force") else value for name, value in first.items()}
    assert sorted_type_counts(torch.from_numpy(shuffled["atype"]), 2) is None
    uncompiled = step.attempts[-1][1]
    for numpy_batch in (first, two_frames, shuffled):
        batch = batch_to_torch(numpy_batch)
        slots = fast.train_neighbors.slots(batch)
        loss, _, grads = step(batch, 1e-3, slots)
        compiled_call = step.attempts[0][1]
        step.attempts[0] = (step.attempts[0][0], uncompiled)  # the same inputs, uncompiled
        expected_loss, _, expected_grads = step(batch, 1e-3, slots)
        step.attempts[0] = (step.attempts[0][0], compiled_call)
        assert float(loss) == pytest.approx(float(expected_loss), rel=1e-12, abs=0)
        for name, value in expected_grads.items():
            torch.testing.assert_close(grads[name], value, rtol=1e-10, atol=1e-14, msg=name)
    assert step.attempts[0][0] == "compiled, C++ wrapper"  # no fallback was taken


def test_guard_filter_keeps_the_batch_guards_only():
    class Entry:
        def __init__(self, name, is_global=False):
            self.name, self.is_global = name, is_global

    dropped = [Entry("self"), Entry("self.wrapper._modules['model']._modules['fitting']"), Entry("type(self).x"),
               Entry("dict(type(self.wrapper).__mro__[1].__dict__)['f']"), Entry("params['model.w']"),
               Entry("others['model.davg']"), Entry("G['torch'].zeros", is_global=True)]
    kept = [Entry("rij"), Entry("nlist"), Entry("labels['energy']"), Entry("type_counts[0]"), Entry("natoms"),
            Entry("prefactors[1]"), Entry("fparam"), Entry("selfish"), Entry("")]
    assert batch_guards_only(dropped + kept) == [False] * len(dropped) + [True] * len(kept)
