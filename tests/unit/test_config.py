"""Tests for deeppot.config: input.json validation, normalization and error messages."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from deeppot.config import (
    DESCRIPTORS,
    AdamWConfig,
    InputConfig,
    SeE2AConfig,
    SeE2RConfig,
    load_input,
    validate_input,
)
from deeppot.errors import ConfigError

# examples/water/se_e2_a/input.json (DeePMD-kit r3.0), verbatim from the seed notes
WATER_JSON = r"""
{
  "_comment1": " model parameters",
  "model": {
    "type_map": [
      "O",
      "H"
    ],
    "descriptor": {
      "type": "se_e2_a",
      "sel": [
        46,
        92
      ],
      "rcut_smth": 0.50,
      "rcut": 6.00,
      "neuron": [
        25,
        50,
        100
      ],
      "resnet_dt": false,
      "axis_neuron": 16,
      "type_one_side": true,
      "precision": "float64",
      "seed": 1,
      "_comment2": " that's all"
    },
    "fitting_net": {
      "neuron": [
        240,
        240,
        240
      ],
      "resnet_dt": true,
      "precision": "float64",
      "seed": 1,
      "_comment3": " that's all"
    },
    "_comment4": " that's all"
  },

  "learning_rate": {
    "type": "exp",
    "decay_steps": 5000,
    "start_lr": 0.001,
    "stop_lr": 3.51e-8,
    "_comment5": "that's all"
  },

  "loss": {
    "type": "ener",
    "start_pref_e": 0.02,
    "limit_pref_e": 1,
    "start_pref_f": 1000,
    "limit_pref_f": 1,
    "start_pref_v": 0,
    "limit_pref_v": 0,
    "_comment6": " that's all"
  },

  "training": {
    "training_data": {
      "systems": [
        "../data/data_0/",
        "../data/data_1/",
        "../data/data_2/"
      ],
      "batch_size": "auto",
      "_comment7": "that's all"
    },
    "validation_data": {
      "systems": [
        "../data/data_3"
      ],
      "batch_size": 1,
      "numb_btch": 3,
      "_comment8": "that's all"
    },
    "numb_steps": 1000000,
    "seed": 10,
    "disp_file": "lcurve.out",
    "disp_freq": 100,
    "save_freq": 1000,
    "_comment9": "that's all"
  },

  "_comment10": "that's all"
}
"""

# CH4 tutorial input.json (DeePMD-kit v2.0.3 hands-on), verbatim from the seed notes (tab-indented)
CH4_JSON = r"""
{
    "_comment": " model parameters",
    "model": {
	"type_map":	["H", "C"],
	"descriptor" :{
	    "type":		"se_e2_a",
	    "sel":		[4, 1],
	    "rcut_smth":	0.50,
	    "rcut":		6.00,
	    "neuron":		[10, 20, 40],
	    "resnet_dt":	false,
	    "axis_neuron":	4,
	    "seed":		1,
	    "_comment":		" that's all"
	},
	"fitting_net" : {
	    "neuron":		[100, 100, 100],
	    "resnet_dt":	true,
	    "seed":		1,
	    "_comment":		" that's all"
	},
	"_comment":	" that's all"
    },

    "learning_rate" :{
	"type":		"exp",
	"decay_steps":	5000,
	"start_lr":	0.001,	
	"stop_lr":	3.51e-8,
	"_comment":	"that's all"
    },

    "loss" :{
	"type":		"ener",
	"start_pref_e":	0.02,
	"limit_pref_e":	1,
	"start_pref_f":	1000,
	"limit_pref_f":	1,
	"start_pref_v":	0,
	"limit_pref_v":	0,
	"_comment":	" that's all"
    },

    "training" : {
	"training_data": {
	    "systems":		["../00.data/training_data"],
	    "batch_size":	"auto",
	    "_comment":		"that's all"
	},
	"validation_data":{
	    "systems":		["../00.data/validation_data"],
	    "batch_size":	"auto",
	    "numb_btch":	1,
	    "_comment":		"that's all"
	},
	"numb_steps":	1000000,
	"seed":		10,
	"disp_file":	"lcurve.out",
	"disp_freq":	1000,
	"save_freq":	10000,
	"_comment":	"that's all"
    },    

    "_comment":		"that's all"
}
"""


def water() -> dict[str, Any]:
    """A fresh, mutable copy of the water input."""
    return json.loads(WATER_JSON)


def error_of(raw: dict[str, Any]) -> str:
    """The message of the ConfigError raised for ``raw``."""
    with pytest.raises(ConfigError) as info:
        validate_input(raw)
    return str(info.value)


def walk_keys(node: Any) -> list[str]:
    """Every dict key anywhere in ``node``."""
    if isinstance(node, dict):
        return [k for k, v in node.items() for k in [k, *walk_keys(v)]]
    if isinstance(node, list):
        return [k for v in node for k in walk_keys(v)]
    return []


# ---- the seed inputs --------------------------------------------------------------


def test_water_input_validates(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text(WATER_JSON)
    cfg = load_input(path)
    assert isinstance(cfg, InputConfig)
    desc = cfg.model.descriptor
    assert isinstance(desc, SeE2AConfig)
    assert desc.sel == [46, 92] and desc.axis_neuron == 16 and desc.type_one_side is True
    assert desc.rcut == 6.0 and desc.rcut_smth == 0.5 and desc.neuron == [25, 50, 100]
    assert cfg.model.fitting_net.neuron == [240, 240, 240]
    assert cfg.learning_rate.stop_lr == pytest.approx(3.51e-8)
    assert cfg.learning_rate.decay_steps == 5000
    assert cfg.loss.start_pref_f == 1000.0 and cfg.loss.limit_pref_v == 0.0
    assert cfg.training.numb_steps == 1_000_000 and cfg.training.seed == 10
    assert cfg.training.training_data.systems == ["../data/data_0/", "../data/data_1/", "../data/data_2/"]
    assert cfg.training.validation_data is not None
    assert cfg.training.validation_data.numb_btch == 3
    assert cfg.training.validation_data.batch_size == 1


def test_ch4_input_validates(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text(CH4_JSON)
    cfg = load_input(path)
    assert cfg.model.type_map == ["H", "C"]
    assert cfg.model.ntypes == 2
    assert cfg.model.descriptor.sel == [4, 1]
    assert cfg.model.descriptor.type_one_side is False  # absent -> DeePMD-kit 3.x default
    assert cfg.model.descriptor.precision == "default"
    assert cfg.model.descriptor.resolved_precision == "float64"
    assert cfg.model.fitting_net.neuron == [100, 100, 100]
    assert cfg.training.save_freq == 10000
    assert cfg.training.validation_data is not None
    assert cfg.training.validation_data.batch_size == "auto"


def test_yaml_input_is_read(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "input.yaml"
    path.write_text(yaml.safe_dump(json.loads(CH4_JSON)))
    assert load_input(path).model.type_map == ["H", "C"]


# ---- normalization ----------------------------------------------------------------


def test_normalized_fills_defaults_and_drops_comments() -> None:
    raw = json.loads(CH4_JSON)
    del raw["learning_rate"]["stop_lr"]
    out = validate_input(raw).normalized()
    assert not [k for k in walk_keys(out) if k.startswith("_comment")]
    assert out["model"]["descriptor"]["type_one_side"] is False
    assert out["model"]["descriptor"]["activation_function"] == "tanh"
    assert out["model"]["descriptor"]["exclude_types"] == []
    assert out["model"]["fitting_net"]["resnet_dt"] is True
    assert out["model"]["data_stat_nbatch"] == 10
    assert out["learning_rate"]["stop_lr"] == 5e-8
    assert out["loss"]["loss_func"] == "mse"
    assert out["optimizer"] == {"type": "Adam", "adam_beta1": 0.9, "adam_beta2": 0.999, "weight_decay": 0.0}
    assert out["training"]["disp_file"] == "lcurve.out"
    assert out["training"]["max_ckpt_keep"] == 5
    assert out["training"]["training_data"]["auto_prob"] == "prob_sys_size"
    json.dumps(out)  # plain JSON data


def test_normalized_output_validates_again_unchanged() -> None:
    raw = water()
    raw["learning_rate"] = {"start_lr": 0.002, "stop_lr_ratio": 0.01}
    out = validate_input(raw).normalized()
    assert validate_input(out).normalized() == out


def test_absent_optional_sections_get_defaults() -> None:
    raw = water()
    for key in ("learning_rate", "loss"):
        del raw[key]
    cfg = validate_input(raw)
    assert cfg.learning_rate.type == "exp"
    assert cfg.learning_rate.start_lr == 1e-3 and cfg.learning_rate.stop_lr == 5e-8
    assert cfg.loss.start_pref_e == 0.02 and cfg.loss.limit_pref_f == 1.0
    assert cfg.optimizer.type == "Adam"


def test_stop_lr_ratio_sets_stop_lr() -> None:
    raw = water()
    raw["learning_rate"] = {"type": "exp", "start_lr": 0.002, "stop_lr_ratio": 0.001}
    lr = validate_input(raw).learning_rate
    assert lr.stop_lr == pytest.approx(2e-6)
    assert lr.stop_lr_ratio == 0.001


def test_adamw_has_its_own_weight_decay_default() -> None:
    raw = water()
    raw["optimizer"] = {"type": "AdamW"}
    opt = validate_input(raw).optimizer
    assert isinstance(opt, AdamWConfig)
    assert opt.weight_decay == 0.001


# ---- aliases and comments -----------------------------------------------------------


def test_aliases_are_normalized_to_canonical_names() -> None:
    raw = water()
    desc = raw["model"]["descriptor"]
    desc["type"] = "se_a"
    desc["n_axis_neuron"] = desc.pop("axis_neuron")
    raw["model"]["fitting_net"]["n_neuron"] = raw["model"]["fitting_net"].pop("neuron")
    training = raw["training"]
    training["stop_batch"] = training.pop("numb_steps")
    training["validation_data"]["numb_batch"] = training["validation_data"].pop("numb_btch")
    training["training_data"]["auto_prob_style"] = "prob_uniform"
    training["training_data"]["sys_weights"] = [0.5, 0.25, 0.25]
    cfg = validate_input(raw)
    out = cfg.normalized()
    assert out["model"]["descriptor"]["type"] == "se_e2_a"
    assert out["model"]["descriptor"]["axis_neuron"] == 16
    assert out["model"]["fitting_net"]["neuron"] == [240, 240, 240]
    assert out["training"]["numb_steps"] == 1_000_000
    assert out["training"]["validation_data"]["numb_btch"] == 3
    assert out["training"]["training_data"]["auto_prob"] == "prob_uniform"
    assert out["training"]["training_data"]["sys_probs"] == [0.5, 0.25, 0.25]
    for alias in ("n_axis_neuron", "n_neuron", "stop_batch", "numb_batch", "auto_prob_style", "sys_weights"):
        assert alias not in walk_keys(out)


@pytest.mark.parametrize("alias", ["num_steps", "num_step", "numb_step"])
def test_step_count_aliases(alias: str) -> None:
    raw = water()
    raw["training"][alias] = raw["training"].pop("numb_steps")
    assert validate_input(raw).training.numb_steps == 1_000_000


def test_se_r_descriptor_alias() -> None:
    raw = water()
    raw["model"]["descriptor"] = {"type": "se_r", "sel": [46, 92], "rcut": 5.0, "rcut_smth": 1.0}
    desc = validate_input(raw).model.descriptor
    assert isinstance(desc, SeE2RConfig)
    assert desc.type == "se_e2_r" and desc.rcut == 5.0
    assert DESCRIPTORS.resolve("se_r") == ("se_e2_r", SeE2RConfig)


def test_axis_neuron_is_not_a_se_r_key() -> None:
    raw = water()
    raw["model"]["descriptor"]["type"] = "se_e2_r"
    assert "input.json: model/descriptor/axis_neuron: unknown key" in error_of(raw)


def test_alias_and_canonical_name_together_is_an_error() -> None:
    raw = water()
    raw["training"]["stop_batch"] = 10
    msg = error_of(raw)
    assert "training/stop_batch" in msg and "given twice" in msg


def test_comment_keys_are_ignored_at_any_depth() -> None:
    raw = water()
    raw["_comment_top"] = "x"
    raw["model"]["descriptor"]["_comment_more"] = {"anything": [1, 2]}
    raw["training"]["training_data"]["_comment"] = 3
    raw["model"]["preset_out_bias"] = {"energy": [None, 0.0], "_comment": "per type"}
    out = validate_input(raw).normalized()
    assert not [k for k in walk_keys(out) if k.startswith("_comment")]
    assert out["model"]["preset_out_bias"] == {"energy": [None, 0.0]}


# ---- sel helpers --------------------------------------------------------------------


def test_resolve_sel_auto_rounds_up_to_multiple_of_four() -> None:
    raw = water()
    raw["model"]["descriptor"]["sel"] = "auto"
    desc = validate_input(raw).model.descriptor
    assert desc.sel_is_auto
    # int(38*1.1)=41 -> 44; int(72*1.1)=79 -> 80
    assert desc.sel_from_counts([38, 72]) == [44, 80]
    assert desc.resolve_sel(lambda rcut: [38, 72]).sel == [44, 80]
    with pytest.raises(ValueError, match="not resolved"):
        desc.resolved_sel


def test_resolve_sel_auto_with_factor_and_explicit_list() -> None:
    raw = water()
    raw["model"]["descriptor"]["sel"] = "auto:1.5"
    desc = validate_input(raw).model.descriptor
    assert desc.sel_from_counts([10, 3]) == [16, 4]
    explicit = validate_input(water()).model.descriptor
    assert not explicit.sel_is_auto
    assert explicit.sel_from_counts([1, 1]) == [46, 92]
    assert explicit.resolve_sel(lambda rcut: [1, 1]).resolved_sel == [46, 92]


HYBRID = {"type": "hybrid", "list": [
    {"type": "se_a", "sel": "auto", "rcut": 4.0, "rcut_smth": 0.5, "neuron": [10, 20, 40], "axis_neuron": 4},
    {"type": "se_r", "sel": "auto:1.5", "rcut": 6.0, "rcut_smth": 0.5, "neuron": [5, 10, 20], "_comment": "x"},
]}


def hybrid_water(**changes: Any) -> dict[str, Any]:
    raw = water()
    raw["model"]["descriptor"] = copy.deepcopy(HYBRID)
    raw["model"].update(changes)
    return raw


def test_hybrid_members_resolve_sel_at_their_own_rcut() -> None:
    model = validate_input(hybrid_water()).model
    assert [m.type for m in model.descriptor.list] == ["se_e2_a", "se_e2_r"]  # aliases resolved per member
    searched = []

    def stat(rcut: float) -> list[int]:
        searched.append(rcut)
        return {4.0: [10, 20], 6.0: [38, 72]}[rcut]

    resolved = model.resolve_sel(stat)
    assert sorted(searched) == [4.0, 6.0]
    assert [m.sel for m in resolved.descriptor.list] == [[12, 24], [60, 108]]
    assert [path for path, _ in resolved.descriptor.leaf_sections()] == [("descriptor", "list", 0),
                                                                         ("descriptor", "list", 1)]
    dumped = resolved.model_dump(mode="json")
    assert dumped["descriptor"]["list"][1]["sel"] == [60, 108] and "_comment" not in dumped["descriptor"]["list"][1]
    assert model.descriptor.list[0].sel == "auto"  # the input section is left as it was
    # what a checkpoint holds validates again, and its sel is taken over where input.json says "auto"
    again = type(model).model_validate(dumped)
    assert again.model_dump(mode="json") == dumped
    assert model.resolve_sel(lambda rcut: pytest.fail("no search needed"), dumped) == resolved


def test_resolve_sel_from_a_checkpoint_of_another_descriptor_searches() -> None:
    model = validate_input(hybrid_water()).model
    previous = validate_input(water()).model.model_dump(mode="json")  # se_e2_a with sel [46, 92]
    resolved = model.resolve_sel(lambda rcut: [1, 1], previous)
    assert [m.sel for m in resolved.descriptor.list] == [[4, 4], [4, 4]]


def test_hybrid_with_a_mixed_type_member_resolves_it_from_the_mixed_count() -> None:
    raw = hybrid_water()
    raw["model"]["descriptor"]["list"].append({"type": "dpa1", "sel": "auto", "rcut": 5.0, "attn_layer": 0})
    model = validate_input(raw).model
    assert model.descriptor.list[2].type == "se_atten"

    def stat(rcut: float, mixed_types: bool = False) -> list[int]:
        return [100] if mixed_types else [10, 20]

    assert [m.sel for m in model.resolve_sel(stat).descriptor.list] == [[12, 24], [16, 32], [112]]


def test_restart_differences_name_the_hybrid_member() -> None:
    from deeppot.train.trainer import model_section_differences

    checkpoint = validate_input(hybrid_water()).model.resolve_sel(lambda rcut: [8, 16]).model_dump(mode="json")
    current = copy.deepcopy(checkpoint)
    current["descriptor"]["list"][1]["neuron"] = [5, 10]
    assert model_section_differences(checkpoint, current) == [
        "model/descriptor/list/1/neuron: checkpoint [5, 10, 20], input.json [5, 10]"]
    current["descriptor"]["list"].pop()
    assert model_section_differences(checkpoint, current)[0].startswith("model/descriptor/list: checkpoint [")


HYBRID_ERRORS = [
    ("list/1/rcut", -1, "input.json: model/descriptor/list/1/rcut: must be greater than 0.0, got -1"),
    ("list/0/rcut_smth", 5.0, "input.json: model/descriptor/list/0/rcut_smth: 5.0 must be smaller than rcut (4.0)"),
    ("list/1/sel", [1, 2, 3], "input.json: model/descriptor/list/1/sel: has 3 entries but model/type_map has 2 types"),
    ("list/0/exclude_types", [[0, 2]], "input.json: model/descriptor/list/0/exclude_types/0: type index 2 is out of range"),
    ("list/0/neuronn", [1], "input.json: model/descriptor/list/0/neuronn: unknown key; did you mean 'neuron'?"),
    ("list/1/type", "se_e3x", "input.json: model/descriptor/list/1/type: unknown descriptor type 'se_e3x'; did you mean"),
    ("list/1", {"type": "hybrid", "list": []},
     "input.json: model/descriptor/list/1/type: a hybrid descriptor cannot hold another hybrid; list its members"),
    ("list", [], "input.json: model/descriptor/list: is empty; list at least one descriptor"),
    ("list/1/type", "loc_frame", "input.json: model/descriptor/list/1/type: loc_frame cannot be a hybrid member"),
    ("rcut", 6.0, "input.json: model/descriptor/rcut: unknown key; remove it"),
]


@pytest.mark.parametrize(("path", "value", "expected"), HYBRID_ERRORS, ids=[c[0] for c in HYBRID_ERRORS])
def test_hybrid_errors_name_the_member_path(path: str, value: Any, expected: str) -> None:
    raw = hybrid_water()
    node: Any = raw["model"]["descriptor"]
    *parents, last = path.split("/")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    msg = error_of(raw)
    assert expected in msg
    assert len(msg.strip().splitlines()) == 1, msg  # one problem, no follow-on noise


def test_type_embedding_section() -> None:
    raw = water()
    raw["model"]["type_embedding"] = {"neuron": [2, 4, 8], "resnet_dt": False, "seed": 1, "_comment": "x"}
    section = validate_input(raw).model.type_embedding
    assert section.neuron == [2, 4, 8] and section.activation_function == "tanh" and not section.use_tebd_bias
    assert validate_input(water()).model.type_embedding is None
    assert "input.json: model/type_embedding: is used with descriptor se_e2_a only, not with 'hybrid'" in error_of(
        hybrid_water(type_embedding={}))
    raw["model"]["type_embedding"] = {"padding": True}
    assert "input.json: model/type_embedding/padding: unknown key" in error_of(raw)
    raw["model"]["type_embedding"] = {"use_econf_tebd": True}
    assert "input.json: model/type_embedding/use_econf_tebd: is not supported by deeppot yet" in error_of(raw)


# ---- error messages -----------------------------------------------------------------


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split("/")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value


ERROR_CASES = [
    ("model/descriptor/rcutt", 5.0, "input.json: model/descriptor/rcutt: unknown key; did you mean 'rcut'?"),
    ("model/descriptor/rcut_smth", 6.5, "input.json: model/descriptor/rcut_smth: 6.5 must be smaller than rcut (6.0)"),
    (
        "model/descriptor/sel",
        [46, 92, 10],
        "input.json: model/descriptor/sel: has 3 entries but model/type_map has 2 types; give one per type",
    ),
    ("model/descriptor/rcut", -1.0, "input.json: model/descriptor/rcut: must be greater than 0.0, got -1.0"),
    ("model/descriptor/rcut", 0, "input.json: model/descriptor/rcut: must be greater than 0.0, got 0"),
    ("model/descriptor/sel", "abc", "input.json: model/descriptor/sel: expected a list of integers"),
    ("model/descriptor/sel", "auto:x", "input.json: model/descriptor/sel: expected a list of integers"),
    ("model/descriptor/rcut", "6.0", "input.json: model/descriptor/rcut: expected a number, got '6.0'"),
    ("model/descriptor/resnet_dt", 1, "input.json: model/descriptor/resnet_dt: expected true or false, got 1"),
    ("model/descriptor/neuron", [25, "x"], "input.json: model/descriptor/neuron: expected a list of positive integers"),
    ("training/numb_steps", "abc", "input.json: training/numb_steps: expected an integer, got 'abc'"),
    (
        "model/descriptor/activation_function",
        "tanhh",
        "input.json: model/descriptor/activation_function: 'tanhh' is not a supported activation function; "
        "use one of 'tanh', 'relu'",
    ),
    (
        "model/fitting_net/precision",
        "float128",
        "input.json: model/fitting_net/precision: 'float128' is not a supported precision; "
        "use one of 'default', 'float64', 'float32', 'float16', 'bfloat16'",
    ),
    (
        "model/descriptor/exclude_types",
        [[0, 1], [1, 5]],
        "input.json: model/descriptor/exclude_types/1: type index 5 is out of range; model/type_map has 2 types",
    ),
    ("model/descriptor/exclude_types", [[0]], "model/descriptor/exclude_types: expected a list of [type_i, type_j] pairs"),
    ("model/pair_exclude_types", [[2, 0]], "input.json: model/pair_exclude_types/0: type index 2 is out of range"),
    ("model/atom_exclude_types", [0, 3], "input.json: model/atom_exclude_types/1: type index 3 is out of range"),
    (
        "training/training_data/batch_size",
        "auto:x",
        "input.json: training/training_data/batch_size: 'auto:x' is not a valid batch size; use a positive integer",
    ),
    ("training/training_data/batch_size", "max", "training/training_data/batch_size: 'max' is not a valid batch size"),
    (
        "training/training_data/batch_size",
        [1, 2],
        "input.json: training/training_data/batch_size: has 2 entries but systems has 3; give one per system",
    ),
    (
        "training/training_data/sys_probs",
        [1.0],
        "input.json: training/training_data/sys_probs: has 1 entries but systems has 3; give one per system",
    ),
    ("training/training_data/auto_prob", "prob_size", "training/training_data/auto_prob: 'prob_size' is not a valid"),
    ("learning_rate/type", "cosine", "input.json: learning_rate/type: learning_rate type 'cosine' is not supported"),
    ("learning_rate/stop_lr_ratio", 0.1, "input.json: learning_rate/stop_lr: stop_lr and stop_lr_ratio are mutually exclusive"),
    (
        "model/descriptor/type",
        "se_e2_aa",
        "input.json: model/descriptor/type: unknown descriptor type 'se_e2_aa'; did you mean 'se_e2_a'? "
        "supported: 'se_e2_a' (alias 'se_a'), 'se_e2_r' (alias 'se_r')",
    ),
    ("model/descriptor/type", "dpa2", "model/descriptor/type: descriptor type 'dpa2' is not supported by deeppot"),
    ("model/type_map", ["O", "O"], "input.json: model/type_map: lists 'O' twice; each type name must be unique"),
    ("model/type_map", [], "input.json: model/type_map: is empty"),
    ("model/fitting_net/trainable", [True, False], "input.json: model/fitting_net/trainable: has 2 entries but the network has 3"),
    ("model/fitting_net/neuronn", [1], "input.json: model/fitting_net/neuronn: unknown key; did you mean 'neuron'?"),
    ("model/fitting_net/n_neuronn", [1], "input.json: model/fitting_net/n_neuronn: unknown key; did you mean 'neuron'?"),
    ("trainig", {}, "input.json: trainig: unknown key; did you mean 'training'?"),
    ("loss/type", "dos", "input.json: loss/type: loss type 'dos' is not supported by deeppot; supported: 'ener', 'tensor'"),
    ("optimizer", {"type": "adam"}, "input.json: optimizer/type: unknown optimizer type 'adam'; did you mean 'Adam'?"),
    ("loss/loss_func", "rmse", "input.json: loss/loss_func: 'rmse' is not allowed; use one of 'mse' or 'mae'"),
    ("training/disp_freq", 0, "input.json: training/disp_freq: must be greater than 0, got 0"),
    ("model/descriptor", [1], "input.json: model/descriptor: expected an object"),
]


@pytest.mark.parametrize(("path", "value", "expected"), ERROR_CASES, ids=[c[0] + "=" + repr(c[1]) for c in ERROR_CASES])
def test_error_message_names_path_and_fix(path: str, value: Any, expected: str) -> None:
    raw = water()
    _set(raw, path, value)
    msg = error_of(raw)
    assert expected in msg
    assert "pydantic" not in msg.lower() and "validation error" not in msg.lower()


def test_required_keys_missing() -> None:
    raw = water()
    del raw["training"]["numb_steps"]
    del raw["model"]["type_map"]
    del raw["training"]["training_data"]["systems"]
    msg = error_of(raw)
    assert "input.json: training/numb_steps: required key missing" in msg
    assert "input.json: model/type_map: required key missing" in msg
    assert "input.json: training/training_data/systems: required key missing" in msg


def test_missing_descriptor_type_lists_choices() -> None:
    raw = water()
    del raw["model"]["descriptor"]["type"]
    msg = error_of(raw)
    assert "input.json: model/descriptor/type: required key missing" in msg
    assert "'se_e2_a' (alias 'se_a')" in msg
    assert msg.count("\n") == 0  # the rest of the descriptor is not reported again


def test_several_errors_reported_at_once() -> None:
    raw = water()
    raw["model"]["descriptor"]["rcutt"] = 5.0
    raw["model"]["fitting_net"]["activation_function"] = "swish"
    raw["learning_rate"]["type"] = "cosine"
    del raw["training"]["numb_steps"]
    raw["training"]["training_data"]["batch_size"] = "auto:"
    lines = error_of(raw).splitlines()
    assert len(lines) == 5
    assert all(line.startswith("input.json: ") for line in lines)
    joined = "\n".join(lines)
    for path in (
        "model/descriptor/rcutt",
        "model/fitting_net/activation_function",
        "learning_rate/type",
        "training/numb_steps",
        "training/training_data/batch_size",
    ):
        assert f"input.json: {path}: " in joined


def test_source_name_is_used_in_messages() -> None:
    raw = water()
    del raw["training"]["numb_steps"]
    with pytest.raises(ConfigError, match=r"^run/in\.json: training/numb_steps: required key missing"):
        validate_input(raw, source="run/in.json")


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(ConfigError, match="expected a JSON object"):
        validate_input([1, 2])  # type: ignore[arg-type]


def test_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "model": {},\n  "training": {,}\n}\n')
    with pytest.raises(ConfigError) as info:
        load_input(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "line 3, column 16" in msg
    assert "invalid JSON" in msg


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "input.yml"
    path.write_text("model:\n  type_map: [O, H\ntraining: {}\n")
    with pytest.raises(ConfigError) as info:
        load_input(path)
    assert str(path) in str(info.value) and "line " in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="nope.json: input file not found"):
        load_input(path)


def test_load_input_uses_file_name_as_source(tmp_path: Path) -> None:
    raw = water()
    raw["model"]["descriptor"]["rcut"] = -2.0
    path = tmp_path / "input.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"input\.json: model/descriptor/rcut: must be greater than 0"):
        load_input(path)


def test_water_copy_is_not_mutated_by_validation() -> None:
    raw = water()
    before = copy.deepcopy(raw)
    validate_input(raw)
    assert raw == before
