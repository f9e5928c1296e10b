"""``deeppot compress``: a compressed water model agrees with the frozen one and goes wherever it goes.

The accuracy over all 400 water frames is printed by benchmarks/bench_compress.py; here a few frames.
"""

import copy
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.export.compress import compress_model
from deeppot.export.model_file import load_model, read_model_metadata, save_model_file
from deeppot.infer import DeepPot
from deeppot.infer.model_test import run_test
from deeppot.model.energy_model import EnergyModel
from deeppot.train.trainer import Trainer
from helpers import WATER, load_example, write_json

_PHYSICS = str(Path(__file__).resolve().parents[1] / "physics")
if _PHYSICS not in sys.path:
    sys.path.insert(0, _PHYSICS)
from deeppot_test_models import cluster_frame, evaluate, make_model, periodic_frame, triclinic_box  # noqa: E402
from physics_checks import check_forces_fd, check_rotation, check_translation, check_virial_fd  # noqa: E402


def water_input() -> dict:
    """The seed's water model (se_e2_a [25, 50, 100] x 16, fitting [240, 240, 240]), untrained: random weights
    with the statistics of the water data."""
    config = copy.deepcopy(load_example("water"))
    config["model"]["data_stat_nbatch"] = 2
    training = config["training"]
    training["training_data"]["systems"] = [str(WATER / f"data_{i}") for i in range(3)]
    training["validation_data"]["systems"] = [str(WATER / "data_3")]
    training.update(numb_steps=0)
    return config


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compress")
    trainer = Trainer(validate_input(water_input()), output_dir=folder)
    frozen = folder / "model.pth"
    save_model_file(trainer.model, trainer.model_params(), frozen)
    compressed = folder / "model-compressed.pth"
    assert main(["compress", "-i", str(frozen), "-o", str(compressed)]) == 0
    return frozen, compressed


def _frames(count: int):
    folder = WATER / "data_3"
    coord = np.load(folder / "set.000" / "coord.npy")[:count]
    box = np.load(folder / "set.000" / "box.npy")[:count]
    return coord, box, np.loadtxt(folder / "type.raw", dtype=np.int64)


def test_compressed_file_records_tables_as_deepmd(files):
    frozen, compressed = files
    meta = read_model_metadata(compressed)
    descriptor = meta["model"]["descriptor"]
    assert meta["format_version"] == 2 and read_model_metadata(frozen)["format_version"] == 1
    assert descriptor["@version"] == 3
    info = np.asarray(descriptor["compress"]["@variables"]["compress_info"])
    data = descriptor["compress"]["@variables"]["compress_data"]
    lower, upper = info[0, 0], info[0, 1]
    assert lower == np.floor(lower) and upper == np.ceil(upper) and lower < 0 < upper
    np.testing.assert_allclose(info[0, 2:], [5 * upper, 0.01, 0.1, -1])
    assert data[0].shape == (round((upper - lower) / 0.01) + round(4 * upper / 0.1), 6 * 100)


def test_compressed_agrees_with_frozen_on_water(files):
    frozen, compressed = files
    coord, box, atype = _frames(3)
    reference = DeepPot(frozen).eval(coord, box, atype, atomic=True)
    result = DeepPot(compressed).eval(coord, box, atype, atomic=True)
    assert np.abs(result[0] - reference[0]).max() / len(atype) < 1e-6  # eV/atom
    assert np.abs(result[1] - reference[1]).max() < 1e-5  # eV/Angstrom
    assert np.abs(result[2] - reference[2]).max() / len(atype) < 1e-6  # eV/atom
    assert np.abs(result[4] - reference[4]).max() < 1e-5
    assert np.abs(result[1]).max() > 0.01  # forces are not trivially zero (random weights: ~0.03 eV/A)


def test_frozen_torchscript_entry_point_of_compressed_file(files):
    """What C++ calls: the scripted forward on an all-pairs list of a non-periodic piece of the frame."""
    frozen, compressed = files
    coord, _, atype = _frames(1)
    coord = coord.reshape(-1, 3)[:48]
    atype = atype[:48]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(compressed))
    assert module.get_type_map() == ["O", "H"] and module.get_rcut() == 6.0
    n = len(atype)
    nlist = torch.tensor([[j for j in range(n) if j != i] for i in range(n)])[None]
    out = module(torch.from_numpy(coord)[None], torch.from_numpy(atype)[None], nlist, None, None, None, True)
    reference = DeepPot(frozen).eval(coord[None], None, atype, atomic=True)
    assert abs(out["energy"].item() - reference[0][0, 0]) / n < 1e-6
    np.testing.assert_allclose(out["extended_force"][0].numpy(), reference[1][0], atol=1e-5)
    np.testing.assert_allclose(out["virial"][0].numpy(), reference[2][0], atol=1e-5)


def test_deeppot_test_reports_the_same_rmse(files):
    frozen, compressed = files
    want = run_test(str(frozen), str(WATER / "data_3"), 3, None, False, None, False)
    got = run_test(str(compressed), str(WATER / "data_3"), 3, None, False, None, False)
    for key in ("rmse_e", "rmse_ea", "rmse_f"):
        assert f"{got[key]:.3e}" == f"{want[key]:.3e}", key


def test_ase_calculator_on_compressed_model(files):
    from ase import Atoms

    from deeppot.calculator import DP

    _, compressed = files
    coord, box, atype = _frames(1)
    atoms = Atoms([["O", "H"][t] for t in atype], positions=coord.reshape(-1, 3), cell=box.reshape(3, 3), pbc=True)
    atoms.calc = DP(compressed)
    energy, force, _ = DeepPot(compressed).eval(coord, box, atype)
    assert atoms.get_potential_energy() == pytest.approx(energy[0, 0], abs=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), force[0], atol=1e-9)


def test_dpdata_driver_on_compressed_model(files):
    import dpdata

    _, compressed = files
    coord, box, atype = _frames(2)
    numbers = [int((atype == 0).sum()), int((atype == 1).sum())]
    system = dpdata.System(data={"atom_names": ["O", "H"], "atom_numbs": numbers, "atom_types": atype, "orig": np.zeros(3), "cells": box.reshape(-1, 3, 3),
                                 "coords": coord.reshape(2, -1, 3)})
    predicted = system.predict(driver="deeppot", model=str(compressed))
    energy, force, _ = DeepPot(compressed).eval(coord, box, atype)
    np.testing.assert_allclose(predicted["energies"], energy[:, 0], atol=1e-9)
    np.testing.assert_allclose(predicted["forces"], force, atol=1e-9)


def test_aotinductor_package_is_rebuilt_for_the_compressed_model(tmp_path, monkeypatch):
    """An input with an embedded .pt2 gets one compiled from the compressed model (compilation stubbed here;
    test_compressed_model_is_captured_for_aotinductor checks that the compressed model traces)."""
    from deeppot.export import aoti

    compiled = []

    def fake_compile(model, verbose=False):
        compiled.append(model.descriptor.compressed)
        return b"package"

    monkeypatch.setattr(aoti, "compile_package", fake_compile)
    model = make_model(rcut=4.0)
    model.min_nbor_dist = 0.8
    save_model_file(model, {}, tmp_path / "in.pth", aoti=True)
    assert main(["compress", "-i", str(tmp_path / "in.pth"), "-o", str(tmp_path / "out.pth")]) == 0
    assert compiled == [False, True] and aoti.read_package(tmp_path / "out.pth") == b"package"
    save_model_file(model, {}, tmp_path / "plain.pth")
    assert main(["compress", "-i", str(tmp_path / "plain.pth"), "-o", str(tmp_path / "plain-out.pth")]) == 0
    assert compiled == [False, True] and aoti.read_package(tmp_path / "plain-out.pth") is None


# ----------------------------------------------------------------- physics of a compressed model
# every compressible descriptor (tiny nets, rcut 4); the hybrid's members have their own cut-offs and sel
SMALL_MODELS = {
    "se_e2_a": {},
    "se_e2_a-two_side-exclude": {"type_one_side": False, "exclude_types": [[0, 1]], "seed": 9},
    "se_e2_r": {"descriptor": "se_e2_r", "exclude_types": [[0, 0]], "activation_function": "gelu",
                "fitting_input_scale": 300.0, "seed": 19},
    "se_e3": {"descriptor": "se_e3", "neuron": (2, 4, 8), "exclude_types": [[1, 1]], "seed": 23},
    "hybrid": {"descriptor": [{"descriptor": "se_e3", "rcut": 3.0, "sel": (12, 24), "neuron": (2, 4, 8)},
                              {"descriptor": "se_e2_a"}, {"descriptor": "se_e2_r", "rcut": 3.5}], "seed": 29},
}


@pytest.fixture(scope="module", params=sorted(SMALL_MODELS))
def small_compressed(request):
    model = make_model(rcut=4.0, **SMALL_MODELS[request.param])
    return model, compress_model(copy.deepcopy(model), min_nbor_dist=0.8)


def test_small_compressed_matches_and_is_exact_derivative(small_compressed):
    model, compressed = small_compressed
    assert compressed.descriptor.compressed and not model.descriptor.compressed
    coord, atype, box = periodic_frame(20, seed=0, box=triclinic_box((8.6, 8.4, 8.8), (0.6, -0.4, 0.3)))
    args = (torch.from_numpy(coord)[None], torch.from_numpy(atype)[None], torch.from_numpy(box)[None])
    want, got = model(*args), compressed(*args)
    assert float(want["force"].abs().max()) > 0.01
    assert abs(got["energy"].item() - want["energy"].item()) / len(atype) < 1e-8
    np.testing.assert_allclose(got["force"].numpy(), want["force"].numpy(), atol=1e-7)
    check_forces_fd(compressed, coord, atype, box)
    check_virial_fd(compressed, coord, atype, box)


def test_small_compressed_is_invariant(small_compressed):
    _, compressed = small_compressed
    coord, atype = cluster_frame(12, seed=0, size=4.5)
    check_translation(compressed, coord, atype)
    check_rotation(compressed, coord, atype)


def test_small_compressed_round_trips_through_its_dict(small_compressed):
    """The compressed dict (DeePMD-kit's layout, per member for hybrid) rebuilds the same model."""
    _, compressed = small_compressed
    again = EnergyModel.deserialize(compressed.serialize())
    coord, atype = cluster_frame(12, seed=1, size=4.5)
    np.testing.assert_array_equal(evaluate(again, coord, atype)["force"], evaluate(compressed, coord, atype)["force"])


def test_compressed_hybrid_file_in_deeppot_test_and_ase(tmp_path):
    """A compressed hybrid (se_e3, se_e2_a, se_e2_r members) written by 'deeppot compress' goes where a frozen
    file goes: 'deeppot test' reports the frozen file's RMSEs to three digits, ASE gives DeepPot's numbers."""
    from ase import Atoms

    from deeppot.calculator import DP

    model = make_model(rcut=4.0, rcut_smth=0.5, sel=(16, 32), type_map=["O", "H"], **SMALL_MODELS["hybrid"])
    model.min_nbor_dist = 0.8
    save_model_file(model, {}, tmp_path / "frozen.pth")
    assert main(["compress", "-i", str(tmp_path / "frozen.pth"), "-o", str(tmp_path / "compressed.pth")]) == 0
    compressed = tmp_path / "compressed.pth"
    want = run_test(str(tmp_path / "frozen.pth"), str(WATER / "data_3"), 2, None, False, None, False)
    got = run_test(str(compressed), str(WATER / "data_3"), 2, None, False, None, False)
    for key in ("rmse_e", "rmse_ea", "rmse_f"):
        assert f"{got[key]:.3e}" == f"{want[key]:.3e}", key
    coord, box, atype = _frames(1)
    atoms = Atoms([["O", "H"][t] for t in atype], positions=coord.reshape(-1, 3), cell=box.reshape(3, 3), pbc=True)
    atoms.calc = DP(compressed)
    energy, force, _ = DeepPot(compressed).eval(coord, box, atype)
    assert atoms.get_potential_energy() == pytest.approx(energy[0, 0], abs=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), force[0], atol=1e-9)
    assert np.abs(force).max() > 1e-2


def test_compressed_model_is_captured_for_aotinductor():
    """The fused kernel's forward and backward operators appear in the traced MD entry point (make_fx + export)
    of a compressed hybrid (se_e3's two-sided tables, se_e2_a, se_e2_r), and the exported graph gives what the
    eager model gives on a system of other sizes than traced."""
    from deeppot.export.aoti import eager_outputs, example_inputs, export_lower

    compressed = compress_model(make_model(rcut=4.0, **SMALL_MODELS["hybrid"]), min_nbor_dist=0.8)
    program = export_lower(compressed)
    targets = {str(node.target) for node in program.graph.nodes}
    assert {"deeppot.tabulate_contract.default", "deeppot.tabulate_contract_backward.default"} <= targets
    inputs = example_inputs(compressed, nloc=9, nall=30, nnei=27, seed=9)
    for got, want in zip(program.module()(*inputs), eager_outputs(compressed, inputs)):
        torch.testing.assert_close(got, want, rtol=0.0, atol=1e-12)


# ----------------------------------------------------------------- bad input
def test_not_a_model(tmp_path, capsys):
    bad = write_json(tmp_path / "input.json", {})
    assert main(["compress", "-i", str(bad), "-o", str(tmp_path / "out.pth")]) == 2
    assert "not a frozen deeppot model" in capsys.readouterr().err
    assert not (tmp_path / "out.pth").exists()


def test_already_compressed(files, tmp_path, capsys):
    _, compressed = files
    assert main(["compress", "-i", str(compressed), "-o", str(tmp_path / "out.pth")]) == 2
    assert "already compressed" in capsys.readouterr().err


def test_bad_stride(files, tmp_path, capsys):
    frozen, _ = files
    assert main(["compress", "-i", str(frozen), "-o", str(tmp_path / "out.pth"), "-s", "-0.01"]) == 2
    assert "-s/--step" in capsys.readouterr().err


LOC_FRAME = {"sel_a": [8, 8], "sel_r": [16, 16], "axis_rule": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]}
REFUSED = {  # make_model options, what the message says
    "loc_frame": ({"descriptor": "loc_frame", "descriptor_options": LOC_FRAME},
                  "descriptor loc_frame cannot be compressed: it has no embedding net of one scalar input"),
    "type_embedding": ({"type_embedding": (4,)},
                       "descriptor se_e2_a cannot be compressed: its embedding net also takes the type embedding"),
    "hybrid-with-loc_frame": ({"descriptor": [{"descriptor": "se_e2_a"}, {"descriptor": "loc_frame", **LOC_FRAME}]},
                              "descriptor hybrid cannot be compressed: its member 1 (loc_frame) cannot be: it has no"),
    "se_atten": ({"descriptor": "se_atten", "sel": (30,), "descriptor_options": {"attn": 8, "attn_layer": 1}},
                 "descriptor se_atten cannot be compressed: tabulating se_atten"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_descriptor_that_cannot_be_compressed(tmp_path, capsys, case):
    """Refused before any work, with the file, the descriptor (the member of a hybrid) and why."""
    options, message = REFUSED[case]
    model = make_model(rcut=4.0, **options)
    model.min_nbor_dist = 0.8
    save_model_file(model, {}, tmp_path / "in.pth")
    assert main(["compress", "-i", str(tmp_path / "in.pth"), "-o", str(tmp_path / "out.pth")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'in.pth'}: {message}" in err and "use the uncompressed model" in err
    assert not (tmp_path / "out.pth").exists()


def test_missing_min_nbor_dist_then_training_script(tmp_path, capsys):
    model = make_model(rcut=6.0, sel=(46, 92), type_map=["O", "H"])
    model.min_nbor_dist = -1.0
    frozen = tmp_path / "old.pth"
    save_model_file(model, {}, frozen)
    out = tmp_path / "out.pth"
    assert main(["compress", "-i", str(frozen), "-o", str(out)]) == 2
    assert "-t input.json" in capsys.readouterr().err and not out.exists()
    config = water_input()
    config["training"]["training_data"]["systems"] = [str(WATER / "data_3")]
    script = write_json(tmp_path / "input.json", config)
    assert main(["compress", "-i", str(frozen), "-o", str(out), "-t", str(script)]) == 0
    compressed, meta = load_model(out)
    assert 0.8 < meta["min_nbor_dist"] < 1.0 and compressed.descriptor.compressed
