"""model/descriptor sections of type se_atten (alias dpa1) and se_atten_v2: DeePMD-kit's keys and defaults, sel as
one number, "auto" from the mixed-type neighbor count, each key's validation with the JSON path in the message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deeppot.config import load_input, validate_input
from deeppot.descriptor import descriptor_class
from deeppot.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "water"


def water(**descriptor: Any) -> dict[str, Any]:
    """DeePMD-kit's se_atten water input with the descriptor keys replaced by ``descriptor``."""
    raw = json.loads((EXAMPLES / "se_atten" / "input.json").read_text())
    raw["model"]["descriptor"] = {"type": "se_atten", **descriptor}
    return raw


def descriptor_of(**descriptor: Any):
    return validate_input(water(**descriptor)).model.descriptor


def error_of(**descriptor: Any) -> str:
    with pytest.raises(ConfigError) as info:
        validate_input(water(**descriptor))
    return str(info.value)


def test_defaults_are_deepmd_kits():
    """argcheck's defaults of DeePMD-kit 3.2 (spec 2.2): se_atten's set_davg_zero true, se_atten_v2's false."""
    section = descriptor_of()
    expected = dict(sel="auto", rcut=6.0, rcut_smth=0.5, neuron=[10, 20, 40], axis_neuron=4, activation_function="tanh",
                    resnet_dt=False, type_one_side=False, precision="default", trainable=True, seed=None,
                    exclude_types=[], env_protection=0.0, attn=128, attn_layer=2, attn_dotr=True, attn_mask=False,
                    smooth_type_embedding=False, set_davg_zero=True, trainable_ln=True, ln_eps=None, tebd_dim=8,
                    use_econf_tebd=False, use_tebd_bias=False, tebd_input_mode="concat", scaling_factor=1.0,
                    normalize=True, temperature=None, concat_output_tebd=True, type_map=None)
    assert {key: getattr(section, key) for key in expected} == expected
    v2 = validate_input(water(type="se_atten_v2")).model.descriptor
    assert v2.set_davg_zero is False and not hasattr(v2, "tebd_input_mode")


def test_alias_sel_forms_and_the_built_descriptor():
    section = descriptor_of(type="dpa1", sel=[40, 80], smooth_type_embdding=True, n_axis_neuron=8)
    assert section.type == "se_atten" and section.sel == [120]  # only the sum of a per-type list counts
    assert section.smooth_type_embedding and section.axis_neuron == 8
    assert descriptor_of(sel=90).sel == [90]
    built = descriptor_class(section.type).from_config(section, 2)
    assert built.mixed_types and built.sel == [120] and built.smooth and built.dim_out == 40 * 8 + 8


def test_deprecated_stripped_type_embedding():
    assert descriptor_of(stripped_type_embedding=True).tebd_input_mode == "strip"
    section = descriptor_of(stripped_type_embedding=False, tebd_input_mode="strip")
    assert section.tebd_input_mode == "concat"  # DeePMD-kit: the deprecated key wins when given
    assert "stripped_type_embedding" not in section.model_dump()


def test_auto_sel_from_the_mixed_type_neighbor_count():
    """DeePMD-kit's mixed-type rule: 4 * ceil(int(max total neighbors * factor) / 4), from the largest number of
    neighbors of any type around one atom (not the sum of per-type maxima); an explicit number stays."""
    asked = []

    def stat(rcut: float, mixed_types: bool = False) -> list[int]:
        asked.append((rcut, mixed_types))
        return [100] if mixed_types else [40, 80]

    model = validate_input(water(sel="auto:1.2", rcut=5.0)).model
    assert model.resolve_sel(stat).descriptor.sel == [120] and asked == [(5.0, True)]
    assert validate_input(water(sel="auto")).model.resolve_sel(stat).descriptor.sel == [112]
    assert validate_input(water(sel=64)).model.resolve_sel(stat).descriptor.sel == [64]


ERRORS = [
    ({"sel": 0}, "model/descriptor/sel: expected the number of neighbors of any type"),
    ({"sel": "auto:x"}, "model/descriptor/sel: expected the number of neighbors of any type"),
    ({"sel": [1.5]}, "model/descriptor/sel: expected the number of neighbors of any type"),
    ({"attn": 0}, "model/descriptor/attn: must be greater than 0"),
    ({"attn_layer": -1}, "model/descriptor/attn_layer: must be at least 0, got -1"),
    ({"tebd_dim": 0}, "model/descriptor/tebd_dim: must be greater than 0"),
    ({"axis_neuron": 0}, "model/descriptor/axis_neuron: must be greater than 0"),
    ({"scaling_factor": 0.0}, "model/descriptor/scaling_factor: must be greater than 0"),
    ({"ln_eps": -1.0}, "model/descriptor/ln_eps: must be greater than 0"),
    ({"tebd_input_mode": "sum"}, "model/descriptor/tebd_input_mode: 'sum' is not allowed; use one of 'concat' or"),
    ({"temperature": "hot"}, "model/descriptor/temperature: expected a number, got 'hot'"),
    ({"attn_dotr": 1}, "model/descriptor/attn_dotr: expected true or false, got 1"),
    ({"smooth_type_embedding": "yes"}, "model/descriptor/smooth_type_embedding: expected true or false"),
    ({"concat_output_tebd": None}, "model/descriptor/concat_output_tebd: expected true or false"),
    ({"attn_mask": True}, "model/descriptor/attn_mask: true is not implemented"),
    ({"use_econf_tebd": True}, "model/descriptor/use_econf_tebd: electronic-configuration type embedding is not"),
    ({"exclude_types": [[0, 2]]}, "model/descriptor/exclude_types/0: type index 2 is out of range"),
    ({"rcut_smth": 7.0}, "model/descriptor/rcut_smth: 7.0 must be smaller than rcut (6.0)"),
    ({"attn_layers": 2}, "model/descriptor/attn_layers: unknown key; did you mean 'attn_layer'?"),
    ({"tebd_dimm": 8}, "model/descriptor/tebd_dimm: unknown key; did you mean 'tebd_dim'?"),
    ({"type": "se_atten_v3"}, "model/descriptor/type: unknown descriptor type 'se_atten_v3'; did you mean"),
    ({"type": "se_atten_v2", "tebd_input_mode": "strip"}, "model/descriptor/tebd_input_mode: unknown key"),
]


@pytest.mark.parametrize("descriptor, expected", ERRORS, ids=[next(iter(d)) + str(i) for i, (d, _) in enumerate(ERRORS)])
def test_errors_name_the_key(descriptor, expected):
    message = error_of(**descriptor)
    assert "input.json: " + expected in message, message


def test_hybrid_member_resolves_its_mixed_sel():
    """An se_atten member of a hybrid keeps its own keys and resolves "auto" from the mixed-type count."""
    raw = water()
    raw["model"]["descriptor"] = {"type": "hybrid", "list": [
        {"type": "dpa1", "sel": "auto", "rcut": 5.0, "attn_layer": 0},
        {"type": "se_e2_a", "sel": [10, 20], "rcut": 3.0},
    ]}
    model = validate_input(raw).model
    member = model.descriptor.list[0]
    assert member.type == "se_atten" and member.attn_layer == 0 and member.set_davg_zero

    def stat(rcut: float, mixed_types: bool = False) -> list[int]:
        return [50] if mixed_types else [20, 30]

    assert model.resolve_sel(stat).descriptor.list[0].sel == [56]


@pytest.mark.parametrize("name", ["se_atten", "se_atten_v2"])
def test_water_examples_validate(name):
    config = load_input(EXAMPLES / name / "input.json")
    section = config.model.descriptor
    assert section.type == name and section.sel == [120] and section.neuron == [25, 50, 100]
    assert section.axis_neuron == 16 and section.attn == 128 and section.attn_layer == 2
    assert config.model.fitting_net.neuron == [240, 240, 240]
