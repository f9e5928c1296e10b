"""se_a_mask against DeePMD-kit's formula, to 1e-10 in float64. deepmd.dpmodel has no se_a_mask, but DeePMD-kit's
op (source/op/tf/descrpt_se_a_mask.cc) is se_e2_a with: every real atom a neighbor, sorted by type then distance;
rows [1/r, x/r^2, y/r^2, z/r^2] with no switch; davg 0 and dstd 1; virtual atoms (aparam 0) neither centers nor
neighbors. So the reference is dpmodel's own se_e2_a given our se_a_mask's embedding nets, a cut-off far
beyond the cluster with the switch starting beyond it too (w = 1 for every pair), and the virtual atoms as
dpmodel's type -1; its energy fitting has use_aparam_as_mask (aparam is not a network input).
"""

import numpy as np
import pytest

from deeppot_test_models import evaluate, load_nopbc, make_model
from dpmodel_oracle import reference_evaluate, reference_model

ATOL = 1e-10


def se_e2_a_reference(model):
    """dpmodel's EnergyModel of our se_a_mask model dict, its descriptor rewritten as an unswitched se_e2_a."""
    data = model.serialize()
    descriptor = data["descriptor"]
    assert descriptor["type"] == "se_a_mask" and "rcut" not in descriptor
    assert data["fitting"]["use_aparam_as_mask"] and data["fitting"]["@variables"]["aparam_avg"] is None
    descriptor.update({"type": "se_e2_a", "@version": 2, "rcut": 900.0, "rcut_smth": 800.0, "env_protection": 0.0,
                       "set_davg_zero": True, "type_map": None,
                       "env_mat": {"rcut": 900.0, "rcut_smth": 800.0, "protection": 0.0, "use_exp_switch": False}})
    return reference_model(data)


@pytest.mark.parametrize("type_one_side", [True, False], ids=["one_side", "two_side"])
def test_molecule_padded_with_virtual_atoms(type_one_side):
    coord, atype, _ = load_nopbc("C3H3O4", 2)  # C, H, O: 10 real atoms
    nf, nreal = coord.shape[0], coord.shape[1]
    # pad to 14 atoms with virtual ones at the origin (as DeePMD-kit's zinc_protein data), types 0, 1, 2, 2
    coord = np.concatenate([coord, np.zeros((nf, 4, 3))], axis=1)
    atype = np.append(atype, [0, 1, 2, 2])
    aparam = np.zeros((nf, nreal + 4, 1))
    aparam[:, :nreal] = 1.0
    aparam[1, 3] = 0.0  # a real atom of frame 1 made virtual: the mask varies per frame
    order = np.random.default_rng(2).permutation(len(atype))
    coord, atype, aparam = coord[:, order], atype[order], aparam[:, order]
    model = make_model("se_a_mask", ntypes=3, sel=(6, 6, 6), neuron=(4, 8, 16), type_one_side=type_one_side,
                       resnet_dt=True, exclude_types=[[0, 2]], numb_aparam=1, fitting_options={"use_aparam_as_mask": True},
                       seed=71)
    ours = evaluate(model, coord, atype, aparam=aparam)
    virtual_type = np.where(aparam[..., 0] == 0, -1, atype[None])
    energy, force, virial, atom_energy = reference_evaluate(se_e2_a_reference(model), coord, virtual_type, None,
                                                            aparam=aparam)
    assert np.abs(force).max() > 1e-3
    np.testing.assert_allclose(ours["energy"], energy, rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours["atom_energy"], atom_energy, rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours["force"], force, rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours["virial"], virial, rtol=0, atol=ATOL)
