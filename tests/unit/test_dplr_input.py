"""model/modifier in input.json (DeePMD-kit's dipole_charge keys and defaults) and the modifier's refusals before
any work: a typo, empty or wrong-length charge maps, a non-positive Ewald parameter, a modifier on a tensor model,
a dipole model of another type_map, frames without a cell."""

import json
import sys
from pathlib import Path

import pytest

from deeppot.config import load_input, validate_input
from deeppot.data import DeepmdSystem
from deeppot.errors import ConfigError, DataError
from deeppot.export.model_file import save_model_file
from deeppot.modifier import DipoleChargeModifier, build_modifier

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/physics"))
from deeppot_test_models import make_model  # noqa: E402

EXAMPLE = ROOT / "examples/water_dplr/input.json"


def dplr_input(**modifier) -> dict:
    config = json.loads(EXAMPLE.read_text())
    config["model"]["modifier"].update(modifier)
    return config


def problems(config) -> str:
    with pytest.raises(ConfigError) as info:
        validate_input(config)
    return str(info.value)


def test_example_reads_with_deepmd_kits_keys_and_defaults(tmp_path):
    config = dplr_input()
    del config["model"]["modifier"]["ewald_h"], config["model"]["modifier"]["ewald_beta"]
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub/input.json"
    path.write_text(json.dumps(config))
    modifier = load_input(path).model.modifier
    assert (modifier.type, modifier.ewald_h, modifier.ewald_beta) == ("dipole_charge", 1.0, 0.4)
    assert modifier.model_charge_map == [-8.0] and modifier.sys_charge_map == [6.0, 1.0]
    assert modifier.model_name == str(tmp_path / "sub/dipole/dipole.pth")  # relative to input.json


def test_bad_modifier_sections_name_the_key():
    assert "model/modifier/type: unknown modifier type 'dipole_charg'; did you mean 'dipole_charge'?" in problems(
        dplr_input(type="dipole_charg"))
    assert "model/modifier/model_charge_map: is empty" in problems(dplr_input(model_charge_map=[]))
    assert "model/modifier/ewald_h: must be greater than 0" in problems(dplr_input(ewald_h=0))
    config = dplr_input()
    config["model"]["modifier"]["modl_name"] = config["model"]["modifier"].pop("model_name")
    message = problems(config)
    assert "model/modifier/modl_name: unknown key; did you mean 'model_name'?" in message
    assert "model/modifier/model_name: required key missing" in message


@pytest.fixture(scope="module")
def dipole_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dplr") / "dipole.pth"
    save_model_file(make_model(fitting="dipole", atom_exclude_types=[1], seed=3), {}, path)
    return path


def test_modifier_goes_with_an_energy_model_of_the_same_types(dipole_file):
    config = dplr_input(model_name=str(dipole_file))
    config["model"]["fitting_net"] = {"type": "dipole", "neuron": [8]}
    config["loss"] = {"type": "tensor", "pref": 1.0, "pref_atomic": 1.0}
    with pytest.raises(ConfigError, match="it goes with an energy model"):
        build_modifier(validate_input(config).model)
    config = dplr_input(model_name=str(dipole_file))
    config["model"]["type_map"] = ["H", "O"]
    with pytest.raises(ConfigError, match=r"model/modifier/model_name: .* has type_map \['O', 'H'\], model/type_map "
                                          r"is \['H', 'O'\]"):
        build_modifier(validate_input(config).model)
    assert isinstance(build_modifier(validate_input(dplr_input(model_name=str(dipole_file))).model),
                      DipoleChargeModifier)


def test_frames_without_a_cell_are_refused():
    system = DeepmdSystem.load(ROOT.parent / "shared/data/nopbc_cho/C1H4O2", ["C", "H", "O"])
    modifier = DipoleChargeModifier(make_model(ntypes=3, fitting="dipole", atom_exclude_types=[1, 2], seed=3),
                                    [-2.0], [4.0, 1.0, 6.0])
    with pytest.raises(DataError, match="C1H4O2: the dipole_charge modifier needs periodic frames"):
        modifier.modify_system(system)
