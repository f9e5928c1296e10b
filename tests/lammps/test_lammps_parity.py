"""pair_style deeppot in LAMMPS equals DeepPot.eval on the water frame: energy, forces, per-atom energy, global
and per-atom virial (two-body and centroid), on 1 and 2 MPI ranks, with LAMMPS types in another order than the
model's type_map, in metal and real units."""

import numpy as np
import pytest

from conftest import NKTV2P, WATER_LMP, frozen_descriptor_model, read_dump, thermo_rows, water_script
from deeppot.infer import DeepPot

# model virial index (row-major 3x3) of LAMMPS's per-atom components: xx yy zz xy xz yz, then centroid yx zx zy
LAMMPS_ORDER = [0, 4, 8, 3, 6, 7, 1, 2, 5]
REAL_ENERGY = 0.0019872067 / 8.617343e-5  # kcal/mol per eV: LAMMPS's real-units boltz over DeePMD-kit's, in eV/K

MEASURE = """compute pe all pe/atom
compute st all stress/atom NULL virial
compute cst all centroid/stress/atom NULL virial
compute vir all pressure NULL virial
thermo_style custom step pe vol c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6]
thermo_modify format float %.17g
dump d all custom 1 frame.dump id type x y z fx fy fz c_pe c_st[*] c_cst[*]
dump_modify d format float %.17g
run 0
"""


def swapped_types_data(folder):
    """water.lmp with LAMMPS type 1 = H and 2 = O (the model's type_map is O H)."""
    lines = WATER_LMP.read_text().splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("Atoms")) + 2
    for k in range(start, len(lines)):
        words = lines[k].split()
        if len(words) >= 5:
            words[1] = {"1": "2", "2": "1"}[words[1]]
            lines[k] = " ".join(words)
    path = folder / "water_swapped.lmp"
    path.write_text("\n".join(lines) + "\n")
    return path


def lammps_and_reference(lammps, folder, model, nprocs, units="metal"):
    data = swapped_types_data(folder)
    lammps(folder, water_script(f"deeppot {model}", "* * H O", data, units, MEASURE), nprocs)
    (_, names, rows), = read_dump(folder / "frame.dump")
    col = {name: k for k, name in enumerate(names)}
    header, values = thermo_rows(folder / "log.lammps")[-1]
    thermo = dict(zip(header, values[0]))
    model_types = np.where(rows[:, col["type"]] == 2, 0, 1)  # LAMMPS 2 = O = model type 0
    coord = rows[:, [col["x"], col["y"], col["z"]]]
    box = np.eye(3) * 12.44470
    e, f, v, ae, av = DeepPot(model).eval(coord[None], box.reshape(1, 9), model_types, atomic=True)
    return rows, col, thermo, (e[0, 0], f[0], v[0], ae[0, :, 0], av[0])


def check(rows, col, thermo, reference, energy_unit=1.0, units="metal"):
    e, f, v, ae, av = reference
    nktv2p = NKTV2P[units]
    tol = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(thermo["PotEng"], e * energy_unit, **tol)
    np.testing.assert_allclose(rows[:, [col["fx"], col["fy"], col["fz"]]], f * energy_unit, **tol)
    np.testing.assert_allclose(rows[:, col["c_pe"]], ae * energy_unit, **tol)
    lammps_virial = np.array([thermo[f"c_vir[{k}]"] for k in range(1, 7)]) * thermo["Volume"] / nktv2p
    np.testing.assert_allclose(lammps_virial, v[LAMMPS_ORDER[:6]] * energy_unit, rtol=1e-10, atol=1e-9)
    # stress/atom is minus the per-atom virial in pressure*volume units
    two_body = -rows[:, [col[f"c_st[{k}]"] for k in range(1, 7)]] / nktv2p
    centroid = -rows[:, [col[f"c_cst[{k}]"] for k in range(1, 10)]] / nktv2p
    np.testing.assert_allclose(two_body, av[:, LAMMPS_ORDER[:6]] * energy_unit, **tol)
    np.testing.assert_allclose(centroid, av[:, LAMMPS_ORDER] * energy_unit, **tol)
    assert np.abs(f).max() > 1e-3 and np.abs(av).max() > 1e-3  # not a trivial comparison


@pytest.mark.parametrize("kind, nprocs", [("frozen", 1), ("frozen", 2), ("compressed", 1), ("compressed", 2),
                                           ("aoti", 2)])
def test_run0_equals_deeppot_eval(tmp_path, lammps, request, kind, nprocs):
    """frozen: TorchScript; compressed: 'deeppot compress' (fused table kernel compiled into the plugin);
    aoti: the same network as frozen with its AOTInductor package, which the plugin runs instead."""
    model = {"frozen": lambda: request.getfixturevalue("model_files")[0],
             "compressed": lambda: request.getfixturevalue("compressed_model"),
             "aoti": lambda: request.getfixturevalue("aoti_model")}[kind]()
    rows, col, thermo, reference = lammps_and_reference(lammps, tmp_path, model, nprocs)
    check(rows, col, thermo, reference)
    assert ("(AOTInductor)" in (tmp_path / "log.lammps").read_text()) == (kind == "aoti")


# One case per descriptor besides se_e2_a (above): compressed where the descriptor can be. The hybrid's largest
# cut-off is not its first member's, so a plugin that took the wrong rcut would miss neighbors.
# se_atten smooth: without smooth_type_embedding its forces on water.lmp's pair 2.5e-5 A inside rcut move by 1e-6
# eV/A when the coordinates move by 1e-13 A (the attention keeps a neighbor at rcut at full weight), so no two
# evaluations of different round-off agree to 1e-10
ATTENTION = {"tebd_dim": 4, "attn": 8, "attn_layer": 1}
DESCRIPTOR_CASES = {
    "se_e2_r-compressed": ({"descriptor": "se_e2_r", "activation_function": "gelu", "fitting_input_scale": 300.0}, True),
    "se_e3-compressed": ({"descriptor": "se_e3", "neuron": (2, 4, 8)}, True),
    "hybrid-compressed": ({"descriptor": [
        {"descriptor": "se_e3", "rcut": 3.0, "sel": (8, 16), "neuron": (2, 4, 8)},
        {"descriptor": "se_e2_a"},
        {"descriptor": "se_e2_r", "rcut": 3.5, "sel": (12, 24)},
    ]}, True),
    # mixed-type slots (sel = [nsel]): the plugin hands LAMMPS's list over as it is, the model formats it
    "se_atten": ({"descriptor": "se_atten", "sel": (40,), "descriptor_options": {**ATTENTION, "smooth_type_embedding": True}},
                 False),
    "se_atten_v2": ({"descriptor": "se_atten_v2", "sel": (40,), "descriptor_options": ATTENTION}, False),
    "loc_frame": ({"descriptor": "loc_frame", "descriptor_options": {
        "sel_a": [8, 16], "sel_r": [8, 16], "axis_rule": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]}}, False),
    "se_e2_a-type_embedding": ({"type_embedding": (4,)}, False),
    # a mixed-type hybrid: sel = [largest nsel], the type-blocked member reads a list made from the mixed one
    "hybrid-mixed": ({"descriptor": [
        {"descriptor": "se_e2_a", "rcut": 3.0, "sel": (8, 16)},
        {"descriptor": "se_atten", "sel": (40,), **ATTENTION, "smooth_type_embedding": True},
    ]}, False),
}


@pytest.mark.parametrize("case", sorted(DESCRIPTOR_CASES))
def test_run0_each_descriptor(tmp_path, lammps, case):
    """run 0 equals DeepPot.eval for a model of each descriptor (1 rank, LAMMPS types in another order)."""
    options, compress = DESCRIPTOR_CASES[case]
    model = frozen_descriptor_model(tmp_path, options, compress)
    rows, col, thermo, reference = lammps_and_reference(lammps, tmp_path, model, 1)
    check(rows, col, thermo, reference)


def test_real_units_converted_as_deepmd_kit(tmp_path, lammps, model_files):
    """units real: coordinates in Angstrom as metal, energies kcal/mol, forces kcal/mol/Angstrom."""
    rows, col, thermo, reference = lammps_and_reference(lammps, tmp_path, model_files[0], 1, units="real")
    check(rows, col, thermo, reference, energy_unit=REAL_ENERGY, units="real")


def test_null_type_is_not_seen_by_the_model(tmp_path, lammps, model_files):
    """pair_coeff * * O H NULL: atoms of LAMMPS type 3 (here 10 extra atoms among the water) get no energy and
    no force and do not change the others'."""
    lines = WATER_LMP.read_text().replace("2 atom types", "3 atom types").replace("192 atoms", "202 atoms")
    rng = np.random.default_rng(0)
    extra = "".join(f"{193 + k} 3 {x:.6f} {y:.6f} {z:.6f}\n" for k, (x, y, z) in enumerate(rng.random((10, 3)) * 12.4))
    (tmp_path / "with_null.lmp").write_text(lines.rstrip("\n") + "\n" + extra)
    body = MEASURE.replace("c_st[*] c_cst[*]", "")
    lammps(tmp_path, water_script(f"deeppot {model_files[0]}", "* * O H NULL", tmp_path / "with_null.lmp",
                                  body=body))
    (_, names, rows), = read_dump(tmp_path / "frame.dump")
    col = {name: k for k, name in enumerate(names)}
    water = rows[:, col["type"]] < 3
    header, values = thermo_rows(tmp_path / "log.lammps")[-1]
    e, f, _ = DeepPot(model_files[0]).eval(rows[water][None, :, [col["x"], col["y"], col["z"]]],
                                           (np.eye(3) * 12.44470).reshape(1, 9), rows[water, col["type"]] - 1)
    np.testing.assert_allclose(values[0, header.index("PotEng")], e[0, 0], rtol=1e-10, atol=1e-10)
    forces = rows[:, [col["fx"], col["fy"], col["fz"]]]
    np.testing.assert_allclose(forces[water], f[0], rtol=1e-10, atol=1e-10)
    assert np.all(forces[~water] == 0) and np.all(rows[~water, col["c_pe"]] == 0)
