"""Compressed se_e2_a against DeePMD-kit 3.2's numpy implementation (deepmd.dpmodel ``enable_compression``).

- DeePMD-kit's own tables (its serialized ``compress`` dict), loaded into deeppot, evaluate as dpmodel's
  compressed model to 1e-10: deeppot reads DeePMD-kit's table layout and conventions (rows, strides, ranges).
- deeppot's tables on the grid both share: value, first and half second derivative coefficients equal to
  round-off; the higher ones differ by round-off amplified by 1/h^k (h = 0.01), far below any effect.
DeePMD-kit 3.2's upper bound also takes the angular columns of davg/dstd; deeppot bounds by the radial
column, as spec section 6 states, so its first table can be shorter; both cover the training data.
"""

import copy

import numpy as np
import pytest

from deeppot.export.compress import compress_model
from deeppot.model.energy_model import EnergyModel
from deeppot_test_models import evaluate, load_water, make_model
from dpmodel_oracle import reference_evaluate, reference_model

WATER = dict(rcut=6.0, rcut_smth=0.5, sel=(46, 92), neuron=(8, 16, 32), axis_neuron=4, fitting_neuron=(16, 16, 16))
MIN_NBOR_DIST = 0.9


def deepmd_compressed(model) -> dict:
    """DeePMD-kit's serialized model after its own enable_compression (numpy, before any torch conversion)."""
    from deepmd.dpmodel.model.base_model import BaseModel

    reference = BaseModel.deserialize(model.serialize())
    reference.atomic_model.descriptor.enable_compression(MIN_NBOR_DIST, 5, 0.01, 0.1, -1)
    return reference.serialize()


@pytest.fixture(scope="module")
def water():
    return load_water(2)


@pytest.mark.parametrize("type_one_side", [True, False], ids=["one_side", "two_side"])
def test_deepmd_tables_evaluate_as_dpmodel(water, type_one_side):
    coord, atype, box = water
    model = make_model(**WATER, type_one_side=type_one_side)
    serialized = deepmd_compressed(model)
    assert serialized["descriptor"]["@version"] == 3
    reference = reference_model(serialized)
    ours = EnergyModel.deserialize(serialized)
    assert ours.descriptor.compressed
    energy, force, virial, _ = reference_evaluate(reference, coord, np.tile(atype, (coord.shape[0], 1)), box)
    result = evaluate(ours, coord, atype, box)
    assert np.abs(force).max() > 1e-3
    np.testing.assert_allclose(result["energy"], energy, rtol=0, atol=1e-10)
    np.testing.assert_allclose(result["force"], force, rtol=0, atol=1e-10)
    np.testing.assert_allclose(result["virial"], virial, rtol=0, atol=1e-10)


def test_table_coefficients_match_deepmd_on_the_shared_grid():
    model = make_model(**WATER)
    theirs = deepmd_compressed(model)["descriptor"]["compress"]["@variables"]
    data, info = compress_model(copy.deepcopy(model), MIN_NBOR_DIST).descriptor.tables.serialize()
    for k in range(len(data)):
        np.testing.assert_array_equal(info[k][[0, 3, 4, 5]], np.asarray(theirs["compress_info"][k])[[0, 3, 4, 5]])
        shared = int(round((info[k][1] - info[k][0]) / 0.01))  # rows of our first table, same x in theirs
        ours = data[k][:shared].reshape(shared, -1, 6)
        other = np.asarray(theirs["compress_data"][k])[:shared].reshape(shared, -1, 6)
        np.testing.assert_allclose(ours[..., :3], other[..., :3], rtol=0, atol=1e-13)
        for power in (3, 4, 5):  # round-off times 1/h^power: its effect on G is below 1e-12 for t <= h
            assert np.abs(ours[..., power] - other[..., power]).max() * 0.01**power < 1e-12
