"""DP/ZBL parity with DeePMD-kit 3.2's numpy ``DPZBLModel`` (deepmd.dpmodel) to 1e-10 in float64: the same
serialized dict, energy, atomic energies, forces and virial, on frames with atoms whose table weight is 1, strictly
between 0 and 1, and 0; the table's spline against DeePMD-kit's ``PairTab``; the dict both ways.

DeePMD-kit 3.2's DPZBLModel refuses a type-blocked DP part (se_e2_a: "LinearAtomicModel only supports
AtomicModel of mixed type") although its forward path handles one (it splits the neighbor list by type); the
se_e2_a oracle is built with that check bypassed and the DP part marked type-blocked, so its numbers are
DeePMD-kit's own code path.
"""

from unittest import mock

import numpy as np
import pytest

from deeppot.model import deserialize_model
from deeppot.model.pair_table import PairTableEnergy
from deeppot_test_models import evaluate
from dpmodel_oracle import reference_evaluate, reference_model
from zbl_models import WATER_TABLE, close_contact_frame, make_zbl_model, softmin_weights

ATOL = 1e-10
SE_ATTEN = dict(descriptor="se_atten", sel=(24,), type_one_side=False, fitting_input_scale=10.0,
                descriptor_options={"tebd_dim": 4, "attn": 8, "smooth_type_embedding": True})
VARIANTS = {
    "se_e2_a": dict(type_one_side=False, seed=3),
    "se_atten": dict(SE_ATTEN, seed=41),
    "se_atten_exclusions": dict(SE_ATTEN, pair_exclude_types=[[1, 1]], atom_exclude_types=[1], seed=43),
}


def oracle(model):
    """dpmodel's DPZBLModel of our dict (type-blocked DP part allowed, see the module docstring)."""
    from deepmd.dpmodel.atomic_model.dp_atomic_model import DPAtomicModel

    serialized = model.serialize()
    if model.mixed_types:
        return reference_model(serialized)
    with mock.patch.object(DPAtomicModel, "mixed_types", lambda self: True):
        reference = reference_model(serialized)
    reference.atomic_model.mixed_types_list = [False, True]
    return reference


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("periodic", [False, True], ids=["cluster", "periodic"])
def test_dpzbl_parity(name, periodic):
    model = make_zbl_model(**VARIANTS[name])
    coord, atype, box = close_contact_frame(periodic, seed=1)
    weights = softmin_weights(coord, box, model.rcut)
    assert weights.max() == 1.0 and weights.min() == 0.0 and np.any((weights > 0.05) & (weights < 0.95))
    ours = evaluate(model, coord, atype, box)
    energy, force, virial, atom_energy = reference_evaluate(
        oracle(model), coord[None], atype[None], None if box is None else box[None])
    assert np.abs(force).max() > 1.0, "the table's repulsion should dominate the forces"
    np.testing.assert_allclose(ours["energy"], energy[0], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours["atom_energy"], atom_energy[0], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours["force"], force[0], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours["virial"], virial[0], rtol=0, atol=ATOL)


def test_table_spline_matches_deepmd_pairtab():
    """Our clamped spline and table extension equal DeePMD-kit's PairTab (scipy) for rcut inside the table, past its
    zero tail, and on a table that ends before rcut with non-zero values (extrapolated to zero)."""
    from deepmd.utils.pair_tab import PairTab

    for rcut in (4.0, 6.5):
        ours = PairTableEnergy.from_file(WATER_TABLE, 2, rcut, 30, "test")
        theirs = PairTab(str(WATER_TABLE), rcut=rcut)
        np.testing.assert_allclose(ours.vdata.numpy(), theirs.vdata, rtol=0, atol=0)
        scale = np.abs(theirs.tab_data).max()
        np.testing.assert_allclose(ours.tab_data.numpy().reshape(-1), theirs.tab_data, rtol=0, atol=1e-12 * scale)


def test_table_extrapolated_to_rcut(tmp_path):
    from deepmd.utils.pair_tab import PairTab

    r = np.arange(1, 41) * 0.05  # 0.05 .. 2.0 A, not zero at the end
    table = np.stack([r, 3.0 / r**2, 1.0 / r**2, 0.5 / r**2], axis=1)
    path = tmp_path / "short.txt"
    np.savetxt(path, table)
    for rcut in (2.03, 2.5):
        ours = PairTableEnergy.from_file(path, 2, rcut, 30, "test")
        theirs = PairTab(str(path), rcut=rcut)
        np.testing.assert_allclose(ours.vdata.numpy(), theirs.vdata, rtol=0, atol=1e-14)
        np.testing.assert_allclose(ours.tab_data.numpy().reshape(-1), theirs.tab_data, rtol=0, atol=1e-11)


def test_dict_round_trip_through_deepmd():
    """Our dict -> DeePMD-kit's DPZBLModel -> its dict -> our model: the same numbers and the same dict keys."""
    model = make_zbl_model(**VARIANTS["se_atten"])
    reference = reference_model(model.serialize())
    back_dict = reference.serialize()
    assert back_dict["type"] == "zbl" and [m["type"] for m in back_dict["models"]] == ["standard", "pairtab"]
    back = deserialize_model(_to_numpy(back_dict))
    assert set(back.serialize()) == set(back_dict)
    coord, atype, box = close_contact_frame(False, seed=2)
    a, b = evaluate(model, coord, atype), evaluate(back, coord, atype)
    for key in ("energy", "force", "virial", "atom_energy"):
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-12)


def _to_numpy(node):
    """The oracle holds torch tensors; a dict as a file would hold it."""
    if isinstance(node, dict):
        return {k: _to_numpy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_to_numpy(v) for v in node]
    return node.numpy() if hasattr(node, "numpy") else node


def test_dp_file_written_by_deeppot_loads_in_deepmd(tmp_path):
    """A .dp file (deeppot's writer) of a DP/ZBL model: DeePMD-kit's own load_dp_model reads it and its model gives
    our numbers; read back by deeppot, the model is the same."""
    from deepmd.dpmodel.utils.serialization import load_dp_model

    from deeppot.export.dp_file import read_dp_file, write_dp_file

    model = make_zbl_model(**VARIANTS["se_atten"])
    path = tmp_path / "zbl.dp"
    write_dp_file(path, {"model": model.serialize(), "model_def_script": {}, "@variables": {"min_nbor_dist": 0.9}})
    theirs = reference_model(load_dp_model(str(path))["model"])
    assert type(theirs).__name__ == "DPZBLModel"
    coord, atype, box = close_contact_frame(True, seed=3)
    ours = evaluate(model, coord, atype, box)
    reference = reference_evaluate(theirs, coord[None], atype[None], box[None])
    np.testing.assert_allclose(ours["energy"], reference[0][0], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours["force"], reference[1][0], rtol=0, atol=ATOL)
    back = evaluate(deserialize_model(read_dp_file(path)["model"]), coord, atype, box)
    np.testing.assert_allclose(back["force"], ours["force"], rtol=0, atol=1e-12)

