"""Models moved between deeppot and DeePMD-kit 3.2 keep their numbers (float64, 1e-10).

- In: DeePMD-kit PyTorch checkpoints made by DeePMD-kit's own trainer (fixtures/deepmd_pt, see its
  make_checkpoints.py), read as plain data, give the energies, forces and virials (or dipoles, polarizabilities)
  of deepmd.dpmodel loaded from DeePMD-kit's own ``dp convert-backend`` of the same checkpoint; their arrays
  are the ones DeePMD-kit serializes, bit for bit.
- In: a ``.dp`` written by DeePMD-kit's writer (``save_dp_model``) for every descriptor and fitting deeppot and
  dpmodel share loads in deeppot with dpmodel's numbers.
- Out: deeppot's ``.dp`` loads with DeePMD-kit's reader (``load_dp_model``) into dpmodel with deeppot's numbers,
  a compressed model included (dpmodel evaluates its tables). se_a_mask and loc_frame (dpmodel has neither) go
  out and back in unchanged.
"""

from pathlib import Path

import numpy as np
import pytest

from deeppot.export.convert_backend import model_from_portable, read_portable, write_portable
from deeppot_test_models import evaluate, load_nopbc, load_water, make_model, periodic_frame, triclinic_box
from dpmodel_oracle import reference_evaluate, reference_model, reference_tensor

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deepmd_pt"
ATOL = 1e-10
SMALL = dict(rcut=4.0, rcut_smth=0.5, sel=(46, 92), neuron=(4, 8), axis_neuron=2, fitting_neuron=(8, 8))
MODELS = {  # every descriptor and fitting deeppot and deepmd.dpmodel share
    "se_e2_a": {"type_one_side": False, "resnet_dt": True},
    "se_e2_r": {"descriptor": "se_e2_r", "fitting_input_scale": 300.0},
    "se_e3": {"descriptor": "se_e3", "sel": (40, 80), "rcut": 3.5},
    "se_atten": {"descriptor": "se_atten", "sel": (120,), "descriptor_options": {"attn": 8, "attn_layer": 1,
                                                                                "tebd_dim": 4}},
    "se_atten_v2": {"descriptor": "se_atten_v2", "sel": (120,), "descriptor_options": {"attn": 8, "attn_layer": 1,
                                                                                      "tebd_dim": 4}},
    "hybrid": {"descriptor": [{"descriptor": "se_e2_r", "rcut": 3.0, "sel": (20, 40)}, {"descriptor": "se_e2_a"}]},
    "dipole": {"fitting": "dipole"},
    "polar": {"fitting": "polar", "fitting_options": {"fit_diag": False, "scale": [1.5, 1.0]}},
    "fparam_aparam": {"numb_fparam": 1, "numb_aparam": 1},
}


@pytest.fixture(scope="module")
def water():
    coord, atype, box = load_water(1)
    return coord, atype, box


def assert_same_numbers(model, data: dict, frame, fparam=None, aparam=None):
    """deeppot's ``model`` against dpmodel built from the serialized dict ``data``: energy, forces, virial
    (an energy model) or the atomic and global tensor (a dipole / polar model)."""
    coord, atype, box = frame
    reference = reference_model(data)
    atypes = np.tile(atype, (coord.shape[0], 1))
    if model.output_type != "energy":
        expected = reference_tensor(reference, coord, atypes, box)
        ours = evaluate(model, coord, atype, box)
        name = data["fitting"]["type"]
        assert np.abs(expected[name]).max() > 1e-3
        for key, value in expected.items():
            np.testing.assert_allclose(ours[key].reshape(value.shape), value, rtol=0, atol=ATOL, err_msg=key)
        return
    energy, force, virial, _ = reference_evaluate(reference, coord, atypes, box, fparam=fparam, aparam=aparam)
    ours = evaluate(model, coord, atype, box, fparam=fparam, aparam=aparam)
    assert np.abs(force).max() > 1e-3, "degenerate comparison: reference forces ~0"
    np.testing.assert_allclose(ours["energy"], energy, rtol=0, atol=ATOL, err_msg="energy")
    np.testing.assert_allclose(ours["force"], force, rtol=0, atol=ATOL, err_msg="force")
    np.testing.assert_allclose(ours["virial"], virial, rtol=0, atol=ATOL, err_msg="virial")


def array_leaves(node, path=""):
    if isinstance(node, np.ndarray):
        return {path: node}
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in array_leaves(value, f"{path}/{key}").items()}
    if isinstance(node, list):
        return {k: v for i, value in enumerate(node) for k, v in array_leaves(value, f"{path}/{i}").items()}
    return {}


@pytest.mark.parametrize("name", ["se_e2_a", "se_e2_r", "se_e3", "se_atten", "se_atten_v2", "hybrid", "dipole",
                                  "polar"])
def test_deepmd_checkpoint_reads_as_deepmd_converts_it(water, name):
    from deepmd.dpmodel.utils.serialization import load_dp_model

    ours = read_portable(FIXTURES / f"{name}.pt")
    theirs = load_dp_model(str(FIXTURES / f"{name}.dp"))
    ours_arrays, their_arrays = array_leaves(ours["model"]), array_leaves(theirs["model"])
    assert ours_arrays.keys() == their_arrays.keys()
    for key, value in their_arrays.items():
        np.testing.assert_array_equal(ours_arrays[key], value, err_msg=key)
    assert ours["min_nbor_dist"] == pytest.approx(float(theirs["@variables"]["min_nbor_dist"]), abs=0)
    assert ours["min_nbor_dist"] > 0.5
    frame = water if name not in ("dipole", "polar") else load_water(1)
    assert_same_numbers(model_from_portable(ours, name), theirs["model"], frame)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dp_file_from_deepmd_writer_loads_in_deeppot(tmp_path, water, name):
    from deepmd.dpmodel.utils.serialization import save_dp_model

    options = {**SMALL, **MODELS[name]}
    data = make_model(**options, seed=301).serialize()
    path = tmp_path / "model.dp"
    save_dp_model(str(path), {"model": data, "model_def_script": {"note": "written by DeePMD-kit's writer"},
                              "@variables": {"min_nbor_dist": 0.8}})
    content = read_portable(path)
    assert content["min_nbor_dist"] == 0.8
    extra = {}
    if options.get("numb_fparam"):
        extra = dict(fparam=np.array([[0.3]]), aparam=np.full((1, len(water[1]), 1), -0.4))
    assert_same_numbers(model_from_portable(content, path), data, water, **extra)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_deeppot_dp_file_loads_in_deepmd(tmp_path, water, name):
    from deepmd.dpmodel.utils.serialization import load_dp_model

    model = make_model(**{**SMALL, **MODELS[name]}, seed=303)
    path = tmp_path / "model.dp"
    write_portable(path, {"model": model.serialize(), "model_def_script": {"type_map": ["O", "H"]},
                          "min_nbor_dist": 0.9})
    loaded = load_dp_model(str(path))
    assert loaded["software"] == "deeppot" and float(loaded["@variables"]["min_nbor_dist"]) == 0.9
    extra = {}
    if MODELS[name].get("numb_fparam"):
        extra = dict(fparam=np.array([[0.3]]), aparam=np.full((1, len(water[1]), 1), -0.4))
    assert_same_numbers(model, loaded["model"], water, **extra)


def test_compressed_model_goes_out_with_its_tables(tmp_path, water):
    """DeePMD-kit's .dp of a compressed descriptor (dpmodel's layout: @version 3 and a "compress" entry) holds
    the tables; dpmodel evaluates deeppot's tables as deeppot does, and they come back in compressed."""
    from deepmd.dpmodel.utils.serialization import load_dp_model

    from deeppot.export.compress import compress_model

    model = compress_model(make_model(**SMALL, type_one_side=False, seed=305), min_nbor_dist=0.9)
    path = tmp_path / "compressed.dp"
    write_portable(path, {"model": model.serialize(), "model_def_script": {}, "min_nbor_dist": 0.9})
    loaded = load_dp_model(str(path))
    assert loaded["model"]["descriptor"]["@version"] == 3 and "compress" in loaded["model"]["descriptor"]
    assert_same_numbers(model, loaded["model"], water)
    assert model_from_portable(read_portable(path), path).descriptor.compressed


@pytest.mark.parametrize("descriptor", ["se_a_mask", "loc_frame"])
def test_descriptors_dpmodel_lacks_go_out_and_back(tmp_path, descriptor):
    """se_a_mask and loc_frame (DeePMD-kit TF only; no dpmodel class) round-trip through .dp unchanged."""
    if descriptor == "se_a_mask":
        coord, atype, type_map = load_nopbc("C3H3O4", 1)
        box = None
        model = make_model(descriptor, ntypes=3, rcut=6.0, rcut_smth=0.5, sel=(8, 8, 8), neuron=(4, 8),
                           fitting_neuron=(8, 8), type_map=type_map, seed=307)
    else:  # each atom's frame from its nearest type-0 and type-1 neighbors, as tests/physics/conftest.py's
        coord, atype, box = periodic_frame(20, seed=0, box=triclinic_box((8.6, 8.4, 8.8), (0.6, -0.4, 0.3)))
        model = make_model(descriptor, sel=(24, 24), seed=309, descriptor_options={
            "sel_a": [8, 8], "sel_r": [16, 16], "axis_rule": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]})
    before = evaluate(model, coord, atype, box)
    path = tmp_path / "model.dp"
    write_portable(path, {"model": model.serialize(), "model_def_script": {}, "min_nbor_dist": -1.0})
    after = evaluate(model_from_portable(read_portable(path), path), coord, atype, box)
    assert np.abs(before["force"]).max() > 1e-4
    for key in ("energy", "force", "virial"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def test_deepmd_deeppot_reads_deeppot_dp_file(tmp_path, water):
    """DeePMD-kit's own user API (deepmd.infer.DeepPot, which picks its numpy backend for .dp) on deeppot's .dp:
    deeppot's energy. (Its numpy backend computes no forces; forces and virials are compared above.)"""
    from deepmd.infer import DeepPot as DeepmdDeepPot

    model = make_model(**{**SMALL, **MODELS["se_atten"]}, seed=311)
    path = tmp_path / "model.dp"
    write_portable(path, {"model": model.serialize(), "model_def_script": {}, "min_nbor_dist": 0.9})
    coord, atype, box = water
    energy = DeepmdDeepPot(str(path)).eval(coord.reshape(1, -1), box.reshape(1, 9), atype)[0]
    ours = evaluate(model, coord, atype, box)["energy"]
    np.testing.assert_allclose(np.ravel(energy), np.ravel(ours), rtol=0, atol=ATOL)


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_form_both_ways(tmp_path, water, suffix):
    """DeePMD-kit's YAML form of the .dp dict: its writer's file loads in deeppot, deeppot's loads in its reader."""
    from deepmd.dpmodel.utils.serialization import load_dp_model, save_dp_model

    model = make_model(**{**SMALL, **MODELS["hybrid"]}, seed=313)
    theirs = tmp_path / f"theirs{suffix}"
    save_dp_model(str(theirs), {"model": model.serialize(), "model_def_script": {},
                                "@variables": {"min_nbor_dist": 0.7}})
    content = read_portable(theirs)
    assert content["min_nbor_dist"] == 0.7
    assert_same_numbers(model_from_portable(content, theirs), model.serialize(), water)
    ours = tmp_path / f"ours{suffix}"
    write_portable(ours, content)
    loaded = load_dp_model(str(ours))
    assert loaded["software"] == "deeppot" and loaded["@variables"]["min_nbor_dist"] == 0.7
    assert_same_numbers(model, loaded["model"], water)
