"""serialize()/deserialize(): deeppot round trip, and exchange of the model dict with deepmd.dpmodel."""

import copy

import numpy as np
import pytest
import torch

from deeppot.model.energy_model import EnergyModel
from deeppot_test_models import evaluate, make_model, periodic_frame, triclinic_box

VARIANTS = {
    "one_side": {},
    "two_side_resnet_dt": {"type_one_side": False, "resnet_dt": True, "fitting_resnet_dt": False},
    "exclusions_gelu": {
        "exclude_types": [[0, 1]], "pair_exclude_types": [[1, 1]], "atom_exclude_types": [0], "activation_function": "gelu",
    },
    "fparam_aparam": {"numb_fparam": 2, "numb_aparam": 1},
    "se_e2_r": {"descriptor": "se_e2_r", "exclude_types": [[0, 1]], "resnet_dt": True},
    "se_e3": {"descriptor": "se_e3", "neuron": (2, 4, 8), "resnet_dt": True, "activation_function": "gelu"},
    "hybrid": {"descriptor": [{"descriptor": "se_e2_r", "rcut": 3.0, "sel": (12, 20)},
                              {"descriptor": "se_e2_a", "type_one_side": False}]},
}


@pytest.fixture(scope="module")
def frame():
    return periodic_frame(20, seed=4, box=triclinic_box((8.6, 8.4, 8.8)))


def _inputs(kwargs, natoms):
    rng = np.random.default_rng(2)
    fparam = rng.normal(size=(1, kwargs["numb_fparam"])) if kwargs.get("numb_fparam") else None
    aparam = rng.normal(size=(1, natoms, kwargs["numb_aparam"])) if kwargs.get("numb_aparam") else None
    return fparam, aparam


def _assert_same_outputs(a, b, coord, atype, box, fparam, aparam, atol=0.0):
    out_a = evaluate(a, coord, atype, box, fparam=fparam, aparam=aparam, atomic_virial=True)
    out_b = evaluate(b, coord, atype, box, fparam=fparam, aparam=aparam, atomic_virial=True)
    for key in out_a:
        np.testing.assert_allclose(out_b[key], out_a[key], rtol=0, atol=atol, err_msg=key)


def _assert_same_dict(a, b, path="model"):
    """Recursive equality of serialized dicts (arrays compared exactly)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (path, sorted(set(a) ^ set(b)))
        for key in a:
            _assert_same_dict(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=path)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b)):
            _assert_same_dict(x, y, f"{path}[{k}]")
    else:
        assert a == b, (path, a, b)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_round_trip(name, frame):
    kwargs = VARIANTS[name]
    model = make_model(rcut=4.0, seed=201, **kwargs)
    data = model.serialize()
    restored = EnergyModel.deserialize(copy.deepcopy(data))
    _assert_same_dict(data, restored.serialize())
    coord, atype, box = frame
    _assert_same_outputs(model, restored, coord, atype, box, *_inputs(kwargs, len(atype)))
    # and the state dicts match
    sd_a, sd_b = model.state_dict(), restored.state_dict()
    assert set(sd_a) == set(sd_b)
    for key in sd_a:
        assert torch.equal(sd_a[key], sd_b[key]), key


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_dict_exchange_with_dpmodel(name, frame):
    """Our dict loads in deepmd.dpmodel (BaseModel.deserialize); dpmodel's serialize() loads back in deeppot
    with identical outputs."""
    from deepmd.dpmodel.model.base_model import BaseModel

    kwargs = VARIANTS[name]
    model = make_model(rcut=4.0, seed=203, **kwargs)
    dp_model = BaseModel.deserialize(copy.deepcopy(model.serialize()))
    assert type(dp_model).__name__ == "EnergyModel"
    assert dp_model.get_rcut() == model.rcut
    assert list(dp_model.get_sel()) == model.sel
    assert list(dp_model.get_type_map()) == model.type_map
    assert dp_model.get_dim_fparam() == kwargs.get("numb_fparam", 0)
    assert dp_model.get_dim_aparam() == kwargs.get("numb_aparam", 0)
    dp_data = dp_model.serialize()
    back = EnergyModel.deserialize(copy.deepcopy(dp_data))
    coord, atype, box = frame
    _assert_same_outputs(model, back, coord, atype, box, *_inputs(kwargs, len(atype)))
    # every parameter survives the trip through DeePMD-kit unchanged
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    # and DeePMD-kit's own re-serialization of our model is a fixed point
    _assert_same_dict(dp_data, BaseModel.deserialize(copy.deepcopy(back.serialize())).serialize())


def test_dpmodel_numpy_energy_matches(frame):
    """The plain numpy dpmodel (no torch involved) gives our energies too (complements the torch oracle)."""
    from deepmd.dpmodel.model.base_model import BaseModel

    coord, atype, box = frame
    model = make_model(rcut=4.0, seed=205, type_one_side=False, activation_function="gelu")
    dp_model = BaseModel.deserialize(copy.deepcopy(model.serialize()))
    out = dp_model.call(coord.reshape(1, -1), atype.reshape(1, -1), box.reshape(1, 9))
    ours = evaluate(model, coord, atype, box)
    np.testing.assert_allclose(np.asarray(out["energy"]).reshape(()), ours["energy"], rtol=0, atol=1e-11)
    np.testing.assert_allclose(np.asarray(out["atom_energy"]).reshape(-1), ours["atom_energy"], rtol=0, atol=1e-12)
