"""Bad inputs stop LAMMPS before the run with a message that says what to change."""

import pytest
import torch

from conftest import RCUT, SEL, make_model, save_model_file, water_script


@pytest.fixture(scope="module")
def param_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("fparam") / "fparam.pth"
    save_model_file(make_model(rcut=RCUT, sel=SEL, numb_fparam=2, numb_aparam=1), {}, path)
    return path


def dipole_model(folder):
    path = folder / "dipole.pth"
    save_model_file(make_model(rcut=RCUT, sel=SEL, fitting="dipole"), {}, path)
    return path


def not_a_model(folder):
    path = folder / "notes.pth"
    path.write_text("just text\n")
    return path


def foreign_torchscript(folder):
    path = folder / "identity.pth"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(path))
    return path


CASES = {
    "missing file": (lambda m, p, d: water_script(f"deeppot {d}/missing.pth"), "'{d}/missing.pth' not found"),
    "not a model": (lambda m, p, d: water_script(f"deeppot {not_a_model(d)}"), "is not a deeppot model file"),
    "foreign TorchScript": (lambda m, p, d: water_script(f"deeppot {foreign_torchscript(d)}"),
                            "a TorchScript file but not a deeppot model"),
    "dipole model": (lambda m, p, d: water_script(f"deeppot {dipole_model(d)}"),
                     "is a dipole model; pair_style deeppot needs an energy model"),
    "unknown element": (lambda m, p, d: water_script(f"deeppot {m}", "* * O C"),
                        "element 'C' (LAMMPS type 2) is not in the model's type_map (O H)"),
    "too many elements": (lambda m, p, d: water_script(f"deeppot {m}", "* * O H H"),
                          "names 3 elements but LAMMPS has 2 atom types"),
    "units lj": (lambda m, p, d: water_script(f"deeppot {m}", units="lj"), "does not support units lj"),
    "newton off": (lambda m, p, d: "newton off\n" + water_script(f"deeppot {m}"), "needs newton_pair on"),
    "fparam missing": (lambda m, p, d: water_script(f"deeppot {p} aparam 0.5"),
                       "the model needs 2 fparam value(s) (its numb_fparam), got 0"),
    "fparam count": (lambda m, p, d: water_script(f"deeppot {p} fparam 1.0 aparam 0.5"),
                     "the model needs 2 fparam value(s) (its numb_fparam), got 1"),
    "aparam count": (lambda m, p, d: water_script(f"deeppot {p} fparam 1 2 aparam 0.5 0.7"),
                     "the model needs 1 aparam value(s) (its numb_aparam), got 2"),
    "fparam not taken": (lambda m, p, d: water_script(f"deeppot {m} fparam 1.0"),
                         "the model takes no fparam; remove the fparam keyword"),
    "different models": (lambda m, p, d: water_script(f"deeppot {m} {p}"), "differs from"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_stops_lammps_with_a_message(tmp_path, lammps, model_files, param_model, case):
    make_script, expected = CASES[case]
    done = lammps(tmp_path, make_script(model_files[0], param_model, tmp_path), check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-2000:]
    assert "ERROR" in output and expected.format(d=tmp_path) in output, output[-2000:]
