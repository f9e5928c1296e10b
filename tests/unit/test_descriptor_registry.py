"""The descriptor registry (DeePMD-kit type names, aliases, did-you-mean) and the descriptor interface."""

import copy

import numpy as np
import pytest

from deeppot.config import DESCRIPTORS as DESCRIPTOR_CONFIGS
from deeppot.config import validate_input
from deeppot.descriptor import (
    DESCRIPTORS,
    Descriptor,
    DescriptorSeA,
    DescriptorSeAtten,
    DescriptorSeAttenV2,
    DescriptorSeR,
    DescriptorSeT,
    descriptor_class,
)
from deeppot.errors import ConfigError, ModelFileError
from deeppot.export.compress import compress_model
from deeppot.model.build import build_model
from deeppot.model.energy_model import EnergyModel
from deeppot.model.statistics import compute_descriptor_statistics
from helpers import WATER, load_example


def test_every_configurable_descriptor_is_implemented():
    """Every input.json descriptor type has its class."""
    assert set(DESCRIPTORS.classes) == set(DESCRIPTOR_CONFIGS.classes)
    for name, cls in DESCRIPTORS.classes.items():
        assert issubclass(cls, Descriptor) and cls.type_name == name


@pytest.mark.parametrize(
    "name, cls",
    [("se_e2_a", DescriptorSeA), ("se_a", DescriptorSeA), ("se_e2_r", DescriptorSeR), ("se_r", DescriptorSeR),
     ("se_e3", DescriptorSeT), ("se_at", DescriptorSeT), ("se_a_3be", DescriptorSeT), ("se_t", DescriptorSeT),
     ("se_atten", DescriptorSeAtten), ("dpa1", DescriptorSeAtten), ("se_atten_v2", DescriptorSeAttenV2)],
)
def test_names_and_aliases(name, cls):
    assert descriptor_class(name) is cls


def test_typo_gets_did_you_mean():
    with pytest.raises(ValueError, match="unknown descriptor type 'se_e3x'; did you mean 'se_e3'"):
        descriptor_class("se_e3x")
    with pytest.raises(ValueError, match="descriptor type 'dpa2' is not supported by deeppot"):
        descriptor_class("dpa2")


def water_input(descriptor: dict) -> dict:
    config = copy.deepcopy(load_example("water"))
    config["model"]["descriptor"] = {"sel": [46, 92], "rcut": 6.0, "neuron": [4, 8], **descriptor}
    config["model"]["fitting_net"]["neuron"] = [8]
    return config


@pytest.mark.parametrize("alias", ["se_t", "se_at", "se_a_3be"])
def test_config_alias_builds_se_e3(alias):
    config = validate_input(water_input({"type": alias}))
    assert config.model.descriptor.type == "se_e3"
    model = build_model(config.model)
    assert isinstance(model.descriptor, DescriptorSeT) and model.fitting.dim_descrpt == 8
    assert model.serialize()["descriptor"]["type"] == "se_e3"


def test_config_refuses_keys_a_descriptor_does_not_have():
    with pytest.raises(ConfigError, match="model/descriptor/type_one_side: unknown key"):
        validate_input(water_input({"type": "se_e3", "type_one_side": True}))
    with pytest.raises(ConfigError, match="model/descriptor/axis_neuron: unknown key"):
        validate_input(water_input({"type": "se_r", "axis_neuron": 4}))


def test_unknown_type_in_a_model_dict():
    config = validate_input(water_input({"type": "se_e2_r"}))
    data = build_model(config.model).serialize()
    assert data["descriptor"]["type"] == "se_r"  # DeePMD-kit writes the alias
    data["descriptor"]["type"] = "se_rr"
    with pytest.raises(ValueError, match="did you mean 'se_e2_r'"):
        EnergyModel.deserialize(data)


@pytest.mark.parametrize("descriptor", ["se_e2_r", "se_e3"])
def test_compress_takes_descriptors_built_from_input_json(descriptor):
    model = build_model(validate_input(water_input({"type": descriptor})).model)
    assert compress_model(model, 0.9).descriptor.compressed
    with pytest.raises(ModelFileError, match="already compressed"):
        compress_model(model, 0.9)


def test_radial_statistics_equal_the_radial_column_of_se_e2_a():
    """se_e2_r's davg/dstd (1 column) are se_e2_a's radial column on the same slots (spec 3.4)."""
    coord = np.load(WATER / "data_0" / "set.000" / "coord.npy")[:2].reshape(2, -1, 3)
    box = np.load(WATER / "data_0" / "set.000" / "box.npy")[:2].reshape(2, 3, 3)
    atype = np.tile(np.loadtxt(WATER / "data_0" / "type.raw", dtype=np.int64), (2, 1))
    batches = [{"coord": coord, "box": box, "atype": atype}]
    models = {}
    for name in ("se_e2_a", "se_e2_r"):
        models[name] = build_model(validate_input(water_input({"type": name})).model)
        compute_descriptor_statistics(models[name], batches, 0.01)
    radial, full = models["se_e2_r"].descriptor, models["se_e2_a"].descriptor
    assert radial.davg.shape == (2, 138, 1) and full.davg.shape == (2, 138, 4)
    np.testing.assert_array_equal(radial.davg.numpy(), full.davg.numpy()[..., :1])
    np.testing.assert_array_equal(radial.dstd.numpy(), full.dstd.numpy()[..., :1])
    assert np.all(radial.davg.numpy() > 0) and np.all(full.dstd.numpy()[..., 1:] != 1.0)
