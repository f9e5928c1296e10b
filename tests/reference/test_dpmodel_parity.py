"""Parity with DeePMD-kit 3.2 (numpy ``deepmd.dpmodel``, run on torch tensors by dpmodel_oracle) to 1e-10.

Each test builds a small deeppot model with random weights and statistics, loads its serialize() dict into
deepmd.dpmodel and compares energy, atomic energies, forces and virial on two water frames (data_0,
sel [46, 92], rcut 6, rcut_smth 0.5) or on non-periodic molecules.
"""

import numpy as np
import pytest
import torch

from deeppot.config import validate_input
from deeppot.model.build import build_model
from deeppot.model.energy_model import EnergyModel
from deeppot.model.pairs import sorted_type_counts
from deeppot.model.statistics import compute_descriptor_statistics
from deeppot_test_models import evaluate, load_nopbc, load_water, make_model
from dpmodel_oracle import reference_evaluate, reference_model
from helpers import load_example

ATOL = 1e-10
WATER = dict(rcut=6.0, rcut_smth=0.5, sel=(46, 92), neuron=(8, 16, 32), axis_neuron=4, fitting_neuron=(16, 16, 16))


@pytest.fixture(scope="module")
def water():
    return load_water(2)


def assert_parity(model, coord, atype, box, fparam=None, aparam=None, atol=ATOL, reference=None):
    nf = coord.shape[0]
    ours = evaluate(model, coord, atype, box, fparam=fparam, aparam=aparam)
    reference = reference_model(model.serialize()) if reference is None else reference
    energy, force, virial, atom_energy = reference_evaluate(
        reference, coord, np.tile(atype, (nf, 1)), box, fparam=fparam, aparam=aparam
    )
    assert np.abs(force).max() > 1e-3, "degenerate comparison: reference forces ~0"
    np.testing.assert_allclose(ours["energy"], energy, rtol=0, atol=atol, err_msg="energy")
    np.testing.assert_allclose(ours["atom_energy"], atom_energy, rtol=0, atol=atol, err_msg="atom_energy")
    np.testing.assert_allclose(ours["force"], force, rtol=0, atol=atol, err_msg="force")
    np.testing.assert_allclose(ours["virial"], virial, rtol=0, atol=atol, err_msg="virial")
    return ours


@pytest.mark.parametrize("type_one_side", [True, False], ids=["one_side", "two_side"])
@pytest.mark.parametrize("resnet_dt", [False, True], ids=["no_dt", "resnet_dt"])
def test_water_se_e2_a(water, type_one_side, resnet_dt):
    model = make_model(**WATER, type_one_side=type_one_side, resnet_dt=resnet_dt, fitting_resnet_dt=resnet_dt, seed=101)
    assert_parity(model, *water)


@pytest.mark.parametrize("type_one_side", [True, False], ids=["one_side", "two_side"])
def test_water_fitting_on_type_slices(water, type_one_side):
    """The fitting's path for frames sorted by type (type_counts: each type's net on its slice of the atoms), which
    the compiled training step takes, against dpmodel's atomic energies."""
    model = make_model(**WATER, type_one_side=type_one_side, resnet_dt=True, fitting_resnet_dt=True, seed=107)
    coord, atype, box = water
    frames = model.frames(torch.from_numpy(coord), torch.from_numpy(atype), torch.from_numpy(box), None)
    ((_, nlist, rij, nei_type),) = list(model.chunked_pairs(*frames, 0))
    counts = sorted_type_counts(frames[1], model.ntypes)
    assert counts == [int((atype == 0).sum()), int((atype == 1).sum())]
    sliced = model.atomic_energy(rij, nlist >= 0, frames[1], nei_type, None, None, counts)
    gathered = model.atomic_energy(rij, nlist >= 0, frames[1], nei_type, None, None)
    reference = reference_evaluate(reference_model(model.serialize()), coord, np.tile(atype, (coord.shape[0], 1)), box)
    np.testing.assert_allclose(sliced.detach().numpy(), reference[3], rtol=0, atol=ATOL)
    np.testing.assert_allclose(sliced.detach().numpy(), gathered.detach().numpy(), rtol=0, atol=1e-13)


def test_sorted_type_counts():
    """Counts only for frames that share one sorted type list without virtual atoms."""
    assert sorted_type_counts(torch.tensor([[0, 0, 1, 2], [0, 0, 1, 2]]), 4) == [2, 1, 1, 0]
    assert sorted_type_counts(torch.tensor([[0, 1, 0]]), 2) is None  # unsorted
    assert sorted_type_counts(torch.tensor([[0, 1], [1, 1]]), 2) is None  # frames differ
    assert sorted_type_counts(torch.tensor([[-1, 0, 1]]), 2) is None  # a virtual atom
    assert sorted_type_counts(torch.zeros(0, 3, dtype=torch.long), 2) is None


def test_water_exclude_types(water):
    model = make_model(**WATER, exclude_types=[[0, 1]], type_one_side=False, seed=103)
    ours = assert_parity(model, *water)
    # the exclusion is effective: the energy differs from the same weights without it
    data = model.serialize()
    data["descriptor"]["exclude_types"] = []
    plain = evaluate(EnergyModel.deserialize(data), *water)
    assert np.abs(plain["energy"] - ours["energy"]).max() > 1e-6


def test_water_model_level_exclusions(water):
    """pair_exclude_types (neighbors dropped like padding) and atom_exclude_types (E_i = 0)."""
    model = make_model(**WATER, pair_exclude_types=[[0, 0]], atom_exclude_types=[1], seed=105)
    ours = assert_parity(model, *water)
    coord, atype, box = water
    np.testing.assert_array_equal(ours["atom_energy"][:, atype == 1], 0.0)


def test_water_fparam_aparam(water):
    coord, atype, box = water
    model = make_model(**WATER, numb_fparam=1, numb_aparam=1, seed=107)
    rng = np.random.default_rng(0)
    fparam = rng.normal(size=(2, 1))
    aparam = rng.normal(size=(2, len(atype), 1))
    assert_parity(model, coord, atype, box, fparam=fparam, aparam=aparam)


def test_water_gelu(water):
    model = make_model(**WATER, activation_function="gelu", type_one_side=False, resnet_dt=True, seed=109)
    assert_parity(model, *water)


def test_water_truncated_sel(water):
    """sel far below the neighbor count: global distance truncation to sum(sel) before the per-type
    split (spec 3.2) must match."""
    params = dict(WATER, sel=(20, 40))
    model = make_model(**params, seed=111)
    assert_parity(model, *water)


def test_dpmodel_native_model(water):
    """A model constructed by deepmd.dpmodel itself (its own defaults and dict), loaded into deeppot."""
    from deepmd.dpmodel.model.model import get_model

    coord, atype, box = water
    config = {
        "type_map": ["O", "H"],
        "descriptor": {
            "type": "se_e2_a", "rcut": 6.0, "rcut_smth": 0.5, "sel": [46, 92], "neuron": [8, 16, 32],
            "axis_neuron": 4, "type_one_side": False, "resnet_dt": True, "seed": 1,
        },
        "fitting_net": {"neuron": [16, 16, 16], "seed": 2, "numb_fparam": 1},
    }
    data = get_model(config).serialize()
    rng = np.random.default_rng(1)
    desc_vars = data["descriptor"]["@variables"]
    desc_vars["davg"][..., 0] = rng.uniform(0.05, 0.3, size=(2, 1))
    desc_vars["dstd"][..., 0] = rng.uniform(0.1, 0.5, size=(2, 1))
    desc_vars["dstd"][..., 1:] = rng.uniform(0.05, 0.3, size=(2, 1, 1))
    data["@variables"]["out_bias"][...] = rng.uniform(-3, 3, size=data["@variables"]["out_bias"].shape)
    data["fitting"]["@variables"]["fparam_avg"][...] = 0.4
    data["fitting"]["@variables"]["fparam_inv_std"][...] = 1.7
    model = EnergyModel.deserialize(data)
    fparam = np.array([[0.2], [-0.9]])
    assert_parity(model, coord, atype, box, fparam=fparam, reference=reference_model(data))


@pytest.mark.parametrize("system", ["C3H3O4", "C1H4O2"])
def test_nopbc_molecule(system):
    coord, atype, type_map = load_nopbc(system, 2)
    model = make_model(
        ntypes=3, rcut=6.0, rcut_smth=0.5, sel=(8, 8, 8), neuron=(8, 16, 32), fitting_neuron=(16, 16, 16),
        type_one_side=False, type_map=type_map, seed=113,
    )
    assert_parity(model, coord, atype, None)


def test_nopbc_env_protection():
    """A non-zero env_protection p: rows w(r) [1/(r+p), d/(r+p)^2] (spec 3.3)."""
    coord, atype, type_map = load_nopbc("C4H3O1", 2)
    model = make_model(
        ntypes=3, rcut=6.0, rcut_smth=0.5, sel=(8, 8, 8), neuron=(8, 16, 32), fitting_neuron=(16, 16, 16),
        type_map=type_map, env_protection=0.3, seed=117,
    )
    ours = assert_parity(model, coord, atype, None)
    data = model.serialize()
    assert data["descriptor"]["env_mat"]["protection"] == 0.3
    data["descriptor"]["env_protection"] = 0.0
    data["descriptor"]["env_mat"]["protection"] = 0.0
    assert np.abs(evaluate(EnergyModel.deserialize(data), coord, atype)["energy"] - ours["energy"]).max() > 1e-6


def test_virtual_atoms_contribute_nothing():
    """Type -1 marks a virtual (padding) atom (spec 3.1/3.2/3.10): it is no one's neighbor and its atomic
    energy is 0, so adding one changes nothing. The cluster has only type-0 atoms, so a leak of the virtual
    atom into the last type block would show up too."""
    coord, _, _ = load_nopbc("C3H3O4", 1)
    coord = coord[0]
    atype = np.zeros(len(coord), dtype=np.int64)
    model = make_model(rcut=6.0, rcut_smth=0.5, sel=(12, 12), seed=115)
    ref = evaluate(model, coord, atype)
    with_virtual = np.vstack([coord, coord.mean(axis=0) + 0.3])
    vtype = np.append(atype, -1)
    # DeePMD-kit itself
    energy, force, _, atom_energy = reference_evaluate(reference_model(model.serialize()), with_virtual[None], vtype[None], None)
    np.testing.assert_allclose(energy[0], ref["energy"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(atom_energy[0, -1], 0.0, atol=ATOL)
    np.testing.assert_allclose(force[0, :-1], ref["force"], rtol=0, atol=ATOL)
    # deeppot
    out = evaluate(model, with_virtual, vtype)
    np.testing.assert_allclose(out["atom_energy"][-1], 0.0, atol=ATOL, err_msg="virtual atom has an energy")
    np.testing.assert_allclose(out["force"][:-1], ref["force"], rtol=0, atol=ATOL, err_msg="virtual atom is a neighbor")
    np.testing.assert_allclose(out["energy"], ref["energy"], rtol=0, atol=ATOL)


# ------------------------------------------------------------------------------------- se_e2_r, se_e3
# se_e2_r's rows are a 1/(5 nnei) mean, so its fitting input is amplified (gelu: no saturation) for forces
# well above the degenerate-comparison floor
SE_R = dict(WATER, neuron=(8, 16, 32), activation_function="gelu", fitting_input_scale=300.0)
SE_T = dict(WATER, neuron=(2, 4, 8))  # DeePMD-kit's se_e3 water example sizes


@pytest.mark.parametrize("descriptor, params", [("se_e2_r", SE_R), ("se_e3", SE_T)], ids=["se_e2_r", "se_e3"])
@pytest.mark.parametrize(
    "options",
    [{}, {"resnet_dt": True, "exclude_types": [[1, 1]], "env_protection": 0.2}],
    ids=["plain", "resnet_dt_exclude_protection"],
)
def test_water_other_descriptors(water, descriptor, params, options):
    model = make_model(descriptor, **{**params, **options}, seed=121)
    assert model.serialize()["descriptor"]["type"] in ("se_r", "se_e3")
    assert_parity(model, *water)


@pytest.mark.parametrize("descriptor, params", [("se_e2_r", SE_R), ("se_e3", SE_T)], ids=["se_e2_r", "se_e3"])
def test_nopbc_three_types_other_descriptors(descriptor, params):
    """Three types: every (ti <= tj) block pair of se_e3, blocks of very different fill."""
    coord, atype, type_map = load_nopbc("C3H3O4", 2)
    model = make_model(
        descriptor, **{**params, "sel": (8, 8, 8)}, ntypes=3, type_map=type_map, exclude_types=[[0, 2]], seed=123
    )
    assert_parity(model, coord, atype, None)


@pytest.mark.parametrize(
    "descriptor",
    [
        {"type": "se_r", "neuron": [8, 16, 32], "resnet_dt": True, "exclude_types": [[0, 0]]},
        {"type": "se_at", "neuron": [2, 4, 8], "resnet_dt": True, "exclude_types": [[0, 1]]},
    ],
    ids=["se_r", "se_at"],
)
def test_dpmodel_native_other_descriptors(water, descriptor):
    """Models constructed by deepmd.dpmodel itself (its aliases, defaults and dict) load into deeppot and agree."""
    from deepmd.dpmodel.model.model import get_model

    coord, atype, box = water
    config = {
        "type_map": ["O", "H"],
        "descriptor": {**descriptor, "rcut": 6.0, "rcut_smth": 0.5, "sel": [46, 92], "seed": 1},
        "fitting_net": {"neuron": [16, 16, 16], "seed": 2},
    }
    data = get_model(config).serialize()
    rng = np.random.default_rng(3)
    desc_vars = data["descriptor"]["@variables"]
    desc_vars["davg"][..., 0] = rng.uniform(0.05, 0.3, size=(2, 1))
    desc_vars["dstd"][..., 0] = rng.uniform(0.1, 0.5, size=(2, 1))
    desc_vars["dstd"][..., 1:] = rng.uniform(0.05, 0.3, size=(2, 1, 1))
    data["@variables"]["out_bias"][...] = rng.uniform(-3, 3, size=data["@variables"]["out_bias"].shape)
    for net in data["fitting"]["nets"]["networks"]:  # amplified fitting input (see SE_R) for non-trivial forces
        net["layers"][0]["@variables"]["w"] *= 30.0
    model = EnergyModel.deserialize(data)
    assert_parity(model, coord, atype, box, reference=reference_model(data))


def test_water_hybrid(water):
    """hybrid: members with their own rcut and sel (se_e2_a at 6 A, se_e3 at 3 A, se_e2_r at 4 A with an
    exclusion) cut from one neighbor list at the largest rcut, outputs concatenated in list order."""
    members = [
        {"descriptor": "se_e2_a", "rcut": 6.0, "sel": (46, 92)},
        {"descriptor": "se_e3", "rcut": 3.0, "sel": (6, 12), "neuron": (2, 4, 8)},
        {"descriptor": "se_e2_r", "rcut": 4.0, "sel": (20, 40), "exclude_types": [[0, 1]]},
    ]
    model = make_model(members, rcut_smth=0.5, fitting_neuron=(16, 16, 16), seed=125)
    assert model.rcut == 6.0 and model.sel == [46, 92] and model.descriptor.dim_out == 16 * 4 + 8 + 16
    assert [m["type"] for m in model.serialize()["descriptor"]["list"]] == ["se_e2_a", "se_e3", "se_r"]
    coord, atype, box = water
    assert_parity(model, coord[:1], atype, box[:1])


def test_dpmodel_native_hybrid(water):
    """A hybrid model constructed by deepmd.dpmodel itself (se_e2_a at 6 A + se_r at 4 A) loads into deeppot."""
    from deepmd.dpmodel.model.model import get_model

    members = [
        {"type": "se_e2_a", "rcut": 6.0, "rcut_smth": 0.5, "sel": [46, 92], "neuron": [4, 8], "axis_neuron": 4},
        {"type": "se_r", "rcut": 4.0, "rcut_smth": 0.5, "sel": [20, 40], "neuron": [4, 8]},
    ]
    config = {"type_map": ["O", "H"], "descriptor": {"type": "hybrid", "list": members},
              "fitting_net": {"neuron": [16, 16], "seed": 2}}
    data = get_model(config).serialize()
    rng = np.random.default_rng(5)
    for member in data["descriptor"]["list"]:
        member["@variables"]["davg"][..., 0] = rng.uniform(0.05, 0.3, size=(2, 1))
        member["@variables"]["dstd"][..., 0] = rng.uniform(0.1, 0.5, size=(2, 1))
    model = EnergyModel.deserialize(data)
    assert model.rcut == 6.0 and model.sel == [46, 92]
    coord, atype, box = water
    assert_parity(model, coord[:1], atype, box[:1], reference=reference_model(data))


def test_hybrid_from_input_json(water):
    """examples/water/hybrid's model section through the config layer (validated, sel resolved, built, statistics
    of the water frames): each member gets its options as DeePMD-kit reads them."""
    config = load_example("water/hybrid")
    config["model"]["fitting_net"]["neuron"] = [16, 16]
    section = validate_input(config).model
    model = build_model(section.resolve_sel(lambda rcut, mixed_types=False: pytest.fail("the example's sel is explicit")))
    coord, atype, box = water
    compute_descriptor_statistics(model, [{"coord": coord, "atype": np.tile(atype, (2, 1)), "box": box}])
    assert [(m.rcut, m.sel) for m in model.descriptor.members] == [(m.rcut, m.sel) for m in section.descriptor.list]
    assert_parity(model, coord[:1], atype, box[:1])


def test_water_hybrid_mixed_types(water):
    """hybrid with a mixed-type member (se_atten, 40 nearest within 5 A) and type-blocked ones (se_e2_a at 6 A with
    sel (10, 20), se_e2_r at 3 A): one mixed list of the 40 nearest; the type-blocked members read it made
    type-blocked, per type the nearest of that type among those 40 (DeePMD-kit's nlist_distinguish_types)."""
    members = [
        {"descriptor": "se_atten", "rcut": 5.0, "sel": (40,), "tebd_dim": 4, "attn": 8, "type_one_side": False},
        {"descriptor": "se_e2_a", "rcut": 6.0, "sel": (10, 20)},
        {"descriptor": "se_e2_r", "rcut": 3.0, "sel": (6, 12), "exclude_types": [[0, 1]]},
    ]
    model = make_model(members, rcut_smth=0.5, fitting_neuron=(16, 16), fitting_input_scale=10.0, seed=141)
    assert model.sel == [40] and model.descriptor.mixed_types and model.descriptor.blocked_sel == [10, 20]
    assert model.fitting.mixed_types  # the se_atten rows carry the center's type: one fitting net
    coord, atype, box = water
    assert_parity(model, coord[:1], atype, box[:1])


# ------------------------------------------------------------------------------------- se_atten (DPA-1)
# sel 60 < the ~130 neighbors of a water atom within 6 A: the nearest-60 truncation of the mixed list is compared
# too. The fitting input is amplified (see SE_R) for forces well above the degenerate-comparison floor.
SE_ATTEN = dict(rcut=6.0, rcut_smth=0.5, sel=(60,), neuron=(4, 8, 16), axis_neuron=4, fitting_neuron=(16, 16),
                type_one_side=False, fitting_input_scale=30.0)
SE_ATTEN_CASES = {
    "concat_default": ("se_atten", {}),
    "concat_davg_exclude_no_dotr": ("se_atten", {"set_davg_zero": False, "attn_dotr": False},
                                    {"exclude_types": [[0, 1]]}),
    "concat_smooth_one_side_temperature": ("se_atten", {"smooth_type_embedding": True, "set_davg_zero": False,
                                                        "normalize": False, "temperature": 0.6},
                                           {"type_one_side": True}),
    "concat_no_attention_no_output_tebd": ("se_atten", {"attn_layer": 0, "concat_output_tebd": False}),
    "strip_two_side": ("se_atten", {"tebd_input_mode": "strip", "set_davg_zero": False}),
    "strip_smooth_one_side_exclude": ("se_atten", {"tebd_input_mode": "strip", "smooth_type_embedding": True},
                                      {"type_one_side": True, "exclude_types": [[1, 1]]}),
    "se_atten_v2_exclude": ("se_atten_v2", {}, {"exclude_types": [[0, 0]]}),
}


@pytest.mark.parametrize("case", SE_ATTEN_CASES.values(), ids=SE_ATTEN_CASES.keys())
def test_water_se_atten(water, case):
    """se_atten / se_atten_v2 whole models (one fitting net for all types, type embedding appended to its
    input unless concat_output_tebd is false) from the same dict: energy, atomic energies, forces, virial."""
    descriptor, options, *model_options = case
    model = make_model(descriptor, **{**SE_ATTEN, **(model_options[0] if model_options else {})},
                       descriptor_options=dict(tebd_dim=4, attn=8, **options), seed=131)
    data = model.serialize()
    assert data["descriptor"]["type"] in ("dpa1", "se_atten_v2") and data["fitting"]["mixed_types"]
    assert len(data["fitting"]["nets"]["networks"]) == 1
    coord, atype, box = water
    assert_parity(model, coord[:1], atype, box[:1])


def test_nopbc_three_types_se_atten():
    """Three types whose neighbors mix in one block; padding and truncation in the same frame."""
    coord, atype, type_map = load_nopbc("C3H3O4", 2)
    model = make_model("se_atten", **{**SE_ATTEN, "sel": (7,)}, ntypes=3, type_map=type_map,
                       descriptor_options=dict(tebd_dim=4, attn=8, set_davg_zero=False), seed=133)
    assert_parity(model, coord, atype, None)


@pytest.mark.parametrize("descriptor", [
    {"type": "dpa1", "tebd_input_mode": "strip", "smooth_type_embedding": True},
    {"type": "se_atten", "attn_layer": 1, "set_davg_zero": False},
    {"type": "se_atten_v2", "type_one_side": True},
], ids=["dpa1_strip", "se_atten_concat", "se_atten_v2"])
def test_dpmodel_native_se_atten(water, descriptor):
    """Models constructed by deepmd.dpmodel itself (its defaults, its mixed-type fitting) load into deeppot and agree."""
    from deepmd.dpmodel.model.model import get_model

    config = {
        "type_map": ["O", "H"],
        "descriptor": {**descriptor, "rcut": 6.0, "rcut_smth": 0.5, "sel": 60, "neuron": [4, 8], "axis_neuron": 4,
                       "tebd_dim": 4, "attn": 8, "seed": 1},
        "fitting_net": {"neuron": [16, 16], "seed": 2},
    }
    data = get_model(config).serialize()
    assert data["fitting"]["mixed_types"]
    rng = np.random.default_rng(7)
    desc_vars = data["descriptor"]["@variables"]
    if not data["descriptor"]["set_davg_zero"]:
        desc_vars["davg"][..., 0] = rng.uniform(0.05, 0.3, size=(2, 1))
    desc_vars["dstd"][..., 0] = rng.uniform(0.1, 0.5, size=(2, 1))
    desc_vars["dstd"][..., 1:] = rng.uniform(0.05, 0.3, size=(2, 1, 1))
    data["@variables"]["out_bias"][...] = rng.uniform(-3, 3, size=data["@variables"]["out_bias"].shape)
    data["fitting"]["nets"]["networks"][0]["layers"][0]["@variables"]["w"] *= 30.0
    model = EnergyModel.deserialize(data)
    coord, atype, box = water
    assert_parity(model, coord[:1], atype, box[:1], reference=reference_model(data))
