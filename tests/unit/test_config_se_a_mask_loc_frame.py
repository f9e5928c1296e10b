"""input.json sections of the TF-only descriptors se_a_mask and loc_frame: keys, defaults, bad input."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from deeppot.config import validate_input
from deeppot.config.model import UNLIMITED_RCUT
from deeppot.errors import ConfigError

ZINC_TYPES = ["C", "O", "N", "H", "S", "ZN"]


def zinc(descriptor: dict | None = None, fitting: dict | None = None) -> dict[str, Any]:
    """DeePMD-kit's examples/zinc_protein/zinc_se_a_mask.json model, with a training section of our data."""
    return {
        "model": {
            "type_map": ZINC_TYPES,
            "descriptor": descriptor if descriptor is not None else {
                "type": "se_a_mask", "sel": [36, 16, 24, 64, 6, 1], "neuron": [32, 32, 64, 128], "resnet_dt": True,
                "axis_neuron": 16, "seed": 1, "_comment": " that's all"},
            "fitting_net": fitting if fitting is not None else {
                "neuron": [240, 240, 240], "resnet_dt": True, "seed": 1, "numb_aparam": 1, "use_aparam_as_mask": True},
        },
        "training": {"training_data": {"systems": ["train"]}, "numb_steps": 1},
    }


def water_loc_frame(**changes: Any) -> dict[str, Any]:
    """DeePMD-kit's source/tests/tf/water.json loc_frame descriptor."""
    descriptor = {"type": "loc_frame", "sel_a": [16, 32], "sel_r": [30, 60], "rcut": 6.0,
                  "axis_rule": [0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0], "_comment2": " default rule: []"}
    descriptor.update(changes)
    return {
        "model": {"type_map": ["O", "H"], "descriptor": descriptor, "fitting_net": {"neuron": [240, 120, 60, 30, 10]}},
        "training": {"training_data": {"systems": ["train"]}, "numb_steps": 1},
    }


def error_of(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        validate_input(raw)
    return str(info.value)


# ---- se_a_mask -------------------------------------------------------------------------------------------
def test_se_a_mask_keys_and_defaults() -> None:
    section = validate_input(zinc()).model.descriptor
    assert section.type == "se_a_mask" and section.sel == [36, 16, 24, 64, 6, 1]
    assert section.neuron == [32, 32, 64, 128] and section.axis_neuron == 16 and section.resnet_dt
    defaults = validate_input(zinc({"type": "se_a_mask"})).model.descriptor
    # argcheck's defaults (DeePMD-kit 3.2), not DescrptSeAMask's constructor defaults
    assert defaults.sel == "auto" and defaults.neuron == [10, 20, 40] and defaults.axis_neuron == 4
    assert defaults.activation_function == "tanh" and not defaults.resnet_dt and not defaults.type_one_side
    assert defaults.exclude_types == [] and defaults.precision == "default" and defaults.trainable
    assert defaults.seed is None
    assert defaults.rcut == UNLIMITED_RCUT  # no cut-off: the neighbor search radius standing for "all atoms"
    alias = validate_input(zinc({"type": "se_a_mask", "n_axis_neuron": 8})).model.descriptor
    assert alias.axis_neuron == 8
    normalized = validate_input(zinc()).normalized()["model"]["descriptor"]
    assert set(normalized) == {"type", "sel", "neuron", "axis_neuron", "activation_function", "resnet_dt",
                               "type_one_side", "exclude_types", "precision", "trainable", "seed"}


@pytest.mark.parametrize("key", ["rcut", "rcut_smth", "env_protection", "set_davg_zero"])
def test_se_a_mask_refuses_se_e2_a_only_keys(key: str) -> None:
    raw = zinc()
    raw["model"]["descriptor"][key] = 1.0
    assert f"input.json: model/descriptor/{key}: unknown key" in error_of(raw)


@pytest.mark.parametrize("fitting", [
    {"neuron": [8]},
    {"neuron": [8], "numb_aparam": 1},
    {"neuron": [8], "use_aparam_as_mask": True},
])
def test_se_a_mask_without_the_aparam_mask_is_refused(fitting: dict) -> None:
    msg = error_of(zinc(fitting=fitting))
    expected = "input.json: model/fitting_net: descriptor se_a_mask takes its real/virtual atom mask from aparam.npy"
    assert expected in msg or "model/fitting_net/numb_aparam" in msg, msg
    assert "numb_aparam" in msg and "use_aparam_as_mask" in msg


def test_use_aparam_as_mask_needs_one_aparam_column() -> None:
    raw = zinc({"type": "se_e2_a", "sel": [4] * 6}, fitting={"neuron": [8], "numb_aparam": 2, "use_aparam_as_mask": True})
    assert "input.json: model/fitting_net/numb_aparam: is 2, but use_aparam_as_mask reads" in error_of(raw)


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("sel", [36, 16], "model/descriptor/sel: has 2 entries but model/type_map has 6 types"),
    ("exclude_types", [[0, 6]], "model/descriptor/exclude_types/0: type index 6 is out of range"),
    ("axis_neuron", 0, "model/descriptor/axis_neuron: must be greater than 0"),
    ("neuronn", [8], "model/descriptor/neuronn: unknown key; did you mean 'neuron'?"),
])
def test_se_a_mask_bad_values_name_the_key(path: str, value: Any, expected: str) -> None:
    raw = zinc()
    raw["model"]["descriptor"][path] = value
    assert expected in error_of(raw)


def test_se_a_mask_and_loc_frame_cannot_be_hybrid_members() -> None:
    for member in ({"type": "se_a_mask", "sel": [1] * 6}, water_loc_frame()["model"]["descriptor"]):
        raw = zinc({"type": "hybrid", "list": [copy.deepcopy(member)]})
        assert "model/descriptor/list/0/type: " + member["type"] in error_of(raw)


# ---- loc_frame -------------------------------------------------------------------------------------------
def test_loc_frame_keys_and_defaults() -> None:
    section = validate_input(water_loc_frame()).model.descriptor
    assert section.sel_a == [16, 32] and section.sel_r == [30, 60] and section.rcut == 6.0
    assert section.axis_rule == [0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0]
    assert section.sel == [46, 92]  # the type-blocked neighbor slots: sel_a + sel_r per type
    raw = water_loc_frame()
    del raw["model"]["descriptor"]["rcut"]
    assert validate_input(raw).model.descriptor.rcut == 6.0
    normalized = validate_input(water_loc_frame()).normalized()["model"]["descriptor"]
    assert normalized == {"type": "loc_frame", "sel_a": [16, 32], "sel_r": [30, 60], "rcut": 6.0,
                          "axis_rule": [0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0]}
    # the resolved section (what checkpoints hold) is the same: sel_a and sel_r are always numbers
    resolved = validate_input(water_loc_frame()).model.resolve_sel(lambda rcut: [1, 1])
    assert resolved.descriptor.model_dump() == normalized


@pytest.mark.parametrize("key", ["sel_a", "sel_r", "axis_rule"])
def test_loc_frame_required_keys(key: str) -> None:
    raw = water_loc_frame()
    del raw["model"]["descriptor"][key]
    assert f"input.json: model/descriptor/{key}: " in error_of(raw)


LOC_FRAME_ERRORS = [
    ({"axis_rule": [0, 1, 0, 0, 1, 1]}, "model/descriptor/axis_rule: has 6 entries; it needs 6 per type"),
    ({"axis_rule": [0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0]}, "axis_rule: has 13 entries"),
    ({"sel_a": [16, 0]}, "axis_rule: entries 0-2 (axis neighbor 1 of type 0): index 0 needs sel_a[1] > 0, but "
                         "sel_a[1] is 0"),
    ({"sel_r": [0, 0], "axis_rule": [0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0]},
     "axis_rule: entries 3-5 (axis neighbor 2 of type 0): index 0 needs sel_r[1] > 0"),
    ({"axis_rule": [0, 2, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0]}, "axis_rule: entries 0-2 (axis neighbor 1 of type 0): "
                                                         "neighbor type 2 must be a type index 0..1"),
    ({"axis_rule": [0, -1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0]}, "'any type but' rule is not supported"),
    ({"axis_rule": [2, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0]}, "class 2 must be 0 (a sel_a neighbor) or 1"),
    ({"sel_r": [30]}, "model/descriptor/sel_r: has 1 entries but sel_a has 2"),
    ({"sel_a": [16], "sel_r": [30], "axis_rule": [0, 0, 0, 0, 0, 1]},
     "model/descriptor/sel_a: has 1 entries but model/type_map has 2 types"),
    ({"sel_a": [16, -1]}, "model/descriptor/sel_a/1: must be at least 0, got -1"),
    ({"rcut_smth": 0.5}, "model/descriptor/rcut_smth: unknown key"),
    ({"rcut": 0}, "model/descriptor/rcut: must be greater than 0"),
]


@pytest.mark.parametrize(("changes", "expected"), LOC_FRAME_ERRORS, ids=[str(i) for i in range(len(LOC_FRAME_ERRORS))])
def test_loc_frame_bad_input(changes: dict, expected: str) -> None:
    assert expected in error_of(water_loc_frame(**changes))
