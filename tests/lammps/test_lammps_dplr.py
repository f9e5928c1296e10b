"""A DPLR file (model + dipole_charge modifier) in LAMMPS: the plugin runs the short-range model, and warns that
the long-range part is not applied and what LAMMPS would need for it."""

from conftest import RCUT, SEL, make_model, save_model_file, thermo_rows, water_script

from deeppot.modifier import DipoleChargeModifier


def test_dplr_file_runs_short_range_with_a_warning(tmp_path, lammps):
    short_range = make_model(rcut=RCUT, rcut_smth=0.5, sel=SEL, seed=1)
    modifier = DipoleChargeModifier(make_model(rcut=RCUT, sel=SEL, fitting="dipole", atom_exclude_types=[1], seed=2),
                                    [-8.0], [6.0, 1.0])
    save_model_file(short_range, {}, tmp_path / "dplr.pth", modifier=modifier.serialize())
    save_model_file(short_range, {}, tmp_path / "plain.pth")
    energies, outputs = {}, {}
    for name in ("dplr", "plain"):
        done = lammps(tmp_path, water_script(f"deeppot {tmp_path / name}.pth", body="thermo_style custom step pe\n"
                                             "run 0"))
        outputs[name] = done.stdout + done.stderr
        energies[name] = thermo_rows(tmp_path / "log.lammps")[-1][1][0][1]
    warning = "is a DPLR model (modifier dipole_charge): only its short-range part is applied here"
    assert warning in outputs["dplr"] and "fix dplr and kspace_style pppm/dplr" in outputs["dplr"], outputs["dplr"]
    assert warning not in outputs["plain"]
    assert energies["dplr"] == energies["plain"]  # the short-range model, nothing added
