"""Compressed descriptors against DeePMD-kit 3.2's numpy implementation (deepmd.dpmodel ``enable_compression``).

- DeePMD-kit's own tables (its serialized ``compress`` dict), loaded into deeppot, evaluate as dpmodel's
  compressed model to 1e-10, for every descriptor dpmodel can evaluate compressed: se_e2_a, se_e2_r and their
  hybrid. deeppot reads DeePMD-kit's table layout and conventions (rows, strides, ranges).
- deeppot's tables on the grid both share: value, first and half second derivative coefficients equal to
  round-off; the higher ones differ by round-off amplified by 1/h^k (h = 0.01), far below any effect. For se_e3
  (dpmodel cannot evaluate compressed se_t) the whole two-sided grid of DeePMD-kit's ``DPTabulate`` is compared.
DeePMD-kit 3.2's upper bound also takes the angular columns of davg/dstd; deeppot bounds by the radial
column, as spec section 6 states, so its first table can be shorter; both cover the training data.
"""

import copy

import numpy as np
import pytest
import torch

from deeppot.export.compress import compress_model
from deeppot.model.energy_model import EnergyModel
from deeppot_test_models import evaluate, load_water, make_model
from dpmodel_oracle import reference_evaluate, reference_model

WATER = dict(rcut=6.0, rcut_smth=0.5, sel=(46, 92), neuron=(8, 16, 32), axis_neuron=4, fitting_neuron=(16, 16, 16))
MIN_NBOR_DIST = 0.9
MODELS = {
    "se_e2_a-one_side": {},
    "se_e2_a-two_side": {"type_one_side": False},
    "se_e2_r": {"descriptor": "se_e2_r", "activation_function": "gelu", "fitting_input_scale": 300.0},
    "hybrid": {"descriptor": [{"descriptor": "se_e2_r", "rcut": 4.0, "sel": (20, 40)}, {"descriptor": "se_e2_a"}]},
}


def deepmd_compressed(model) -> dict:
    """DeePMD-kit's serialized model after its own enable_compression (numpy, before any torch conversion)."""
    from deepmd.dpmodel.model.base_model import BaseModel

    reference = BaseModel.deserialize(model.serialize())
    reference.atomic_model.descriptor.enable_compression(MIN_NBOR_DIST, 5, 0.01, 0.1, -1)
    return reference.serialize()


@pytest.fixture(scope="module")
def water():
    return load_water(2)


@pytest.mark.parametrize("case", sorted(MODELS))
def test_deepmd_tables_evaluate_as_dpmodel(water, case):
    coord, atype, box = water
    model = make_model(**{**WATER, **MODELS[case]})
    serialized = deepmd_compressed(model)
    reference = reference_model(serialized)
    ours = EnergyModel.deserialize(serialized)
    assert ours.descriptor.compressed
    members = serialized["descriptor"].get("list", [serialized["descriptor"]])
    assert all(member["@version"] == 3 and "compress" in member for member in members)
    energy, force, virial, _ = reference_evaluate(reference, coord, np.tile(atype, (coord.shape[0], 1)), box)
    result = evaluate(ours, coord, atype, box)
    assert np.abs(force).max() > 1e-3
    np.testing.assert_allclose(result["energy"], energy, rtol=0, atol=1e-10)
    np.testing.assert_allclose(result["force"], force, rtol=0, atol=1e-10)
    np.testing.assert_allclose(result["virial"], virial, rtol=0, atol=1e-10)
    assert EnergyModel.deserialize(ours.serialize()).descriptor.compressed  # and it writes them back


@pytest.mark.parametrize("case", ["se_e2_a-one_side", "se_e2_r"])
def test_table_coefficients_match_deepmd_on_the_shared_grid(case):
    model = make_model(**{**WATER, **MODELS[case]})
    theirs = deepmd_compressed(model)["descriptor"]["compress"]["@variables"]
    data, info = compress_model(copy.deepcopy(model), MIN_NBOR_DIST).descriptor.tables.serialize()
    for k in range(len(data)):
        np.testing.assert_array_equal(info[k][[0, 3, 4, 5]], np.asarray(theirs["compress_info"][k])[[0, 3, 4, 5]])
        shared = int(round((info[k][1] - info[k][0]) / 0.01))  # rows of our first table, same x in theirs
        assert_same_pieces(data[k][:shared], np.asarray(theirs["compress_data"][k])[:shared], 0.01)


def assert_same_pieces(ours: np.ndarray, other: np.ndarray, stride: float) -> None:
    """Tables of interleaved quintic coefficients (rows x 6M) describe the same pieces of width ``stride``, to
    round-off relative to the largest value of G in them."""
    assert ours.shape == other.shape
    ours, other = ours.reshape(len(ours), -1, 6), other.reshape(len(other), -1, 6)
    scale = max(1.0, np.abs(other[..., 0]).max())
    np.testing.assert_allclose(ours[..., :3], other[..., :3], rtol=0, atol=1e-13 * scale)
    for power in (3, 4, 5):  # round-off times 1/h^power: its effect on G is below 1e-12 for t <= h
        assert np.abs(ours[..., power] - other[..., power]).max() * stride**power < 1e-12 * scale


def test_se_e3_tables_equal_deepmd_se_t_tables():
    """se_e3: DeePMD-kit's DPTabulate of its se_t (two-sided grid [-5b, -b] / [-b, b] / [b, 5b], strides 1 and
    0.1, i.e. 10 x the command's) on the same nets gives the same ranges and the same pieces, except the first
    piece of [-b, b] and of [b, 5b]: DeePMD-kit's se_t table builder (deepmd/utils/tabulate.py ``_build_lower``)
    gives those the other table's stride in their coefficients, so its two pieces there do not end at the net's
    value (ours do: test_tabulate's two-sided test). The statistics have one dstd for every column, so that
    DeePMD-kit's range (which also reads the radial column) is the spec's."""
    import deepmd.dpmodel.descriptor  # noqa: F401  (first: tabulate_math alone is a circular import)
    from deepmd.utils.tabulate_math import DPTabulate

    model = make_model(descriptor="se_e3", rcut=4.0, sel=(12, 24), neuron=(2, 4, 8), seed=3)
    descriptor = model.descriptor
    with torch.no_grad():
        descriptor.dstd[:] = descriptor.dstd[:, :, 1:2].min()
    ours = compress_model(copy.deepcopy(model), MIN_NBOR_DIST).descriptor.tables
    reference = reference_model(model.serialize()).atomic_model.descriptor
    table = DPTabulate(reference, descriptor.neuron, False, [], "tanh")
    lower, upper = table.build(MIN_NBOR_DIST, 5, 0.1, 1.0)
    data, info = ours.serialize()
    for ti in range(2):
        for tj in range(ti, 2):
            name = f"filter_{ti}_net_{tj}"
            k = ti + tj * 2  # our net index (DeePMD-kit's collection index of (ti, tj))
            np.testing.assert_allclose(info[k][:5], [lower[name], upper[name], 5 * upper[name], 0.1, 1.0])
            assert ours.bottom[k] == -5 * upper[name] and upper[name] > 10
            below, first = ours.n_below[k], ours.n_first[k]
            theirs = np.asarray(table.data[name])
            assert theirs.shape == data[k].shape == (2 * below + first, 6 * 8)
            for rows, stride in ((slice(0, below), 1.0), (slice(below + 1, below + first), 0.1),
                                 (slice(below + first + 1, None), 1.0)):
                assert_same_pieces(data[k][rows], theirs[rows], stride)
