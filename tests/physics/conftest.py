"""Fixtures for the physics checks: small float64 models and frames (see deeppot_test_models.py)."""

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from deeppot_test_models import cluster_frame, make_model, periodic_frame, triclinic_box  # noqa: E402



RCUT = 4.0

# model variants exercised by the physics checks (keyword arguments of make_model)
MODEL_VARIANTS = {
    "one_side": {},
    "two_side_resnet_dt": {"type_one_side": False, "resnet_dt": True, "seed": 5},
    "desc_exclude_types": {"exclude_types": [[0, 1]], "seed": 9},
    "model_exclusions": {"pair_exclude_types": [[1, 1]], "atom_exclude_types": [0], "seed": 13},
    "gelu": {"activation_function": "gelu", "type_one_side": False, "seed": 17},
    # the other descriptors, each with a descriptor exclusion and resnet_dt; se_e2_r's rows vary little (a
    # 1/(5 nnei) mean), so its fitting input is amplified (gelu does not saturate there) for O(0.1) forces
    "se_e2_r": {"descriptor": "se_e2_r", "exclude_types": [[0, 0]], "resnet_dt": True, "activation_function": "gelu",
                "fitting_input_scale": 300.0, "seed": 19},
    "se_e3": {"descriptor": "se_e3", "neuron": (2, 4, 8), "exclude_types": [[1, 1]], "resnet_dt": True, "seed": 23},
    # hybrid: members of different cut-offs and sel on one neighbor list (rcut 4, sel the per-type maximum)
    "hybrid": {"descriptor": [{"descriptor": "se_e2_a", "sel": (24, 16)},
                              {"descriptor": "se_e3", "rcut": 3.0, "sel": (12, 24), "neuron": (2, 4, 8)}], "seed": 29},
    # se_e2_a with a model-level type embedding: one embedding net and one fitting net for every type
    "type_embedding": {"type_embedding": (2, 4), "exclude_types": [[0, 1]], "seed": 31},
    "type_embedding_two_side": {"type_embedding": (4,), "type_one_side": False, "resnet_dt": True, "seed": 37},
    # hybrid with a mixed-type member: one mixed list of the 24 nearest; se_e2_a reads it made type-blocked
    "hybrid_mixed": {"descriptor": [{"descriptor": "se_atten", "sel": (24,), "tebd_dim": 4, "attn": 8,
                                     "smooth_type_embedding": True, "type_one_side": False},
                                    {"descriptor": "se_e2_a", "rcut": 3.0, "sel": (8, 12)}],
                     "fitting_input_scale": 10.0, "seed": 59},
    # se_atten (DPA-1) on mixed-type slots, with smooth_type_embedding (DeePMD-kit's se_atten is smooth at rcut
    # only with it; without, the attention softmax jumps when a neighbor enters). davg = 0 (se_atten's
    # set_davg_zero) keeps padded slots out of the sums, as DeePMD-kit's permutation invariance needs in "concat"
    # mode; se_atten_v2 ("strip", always smooth) has random davg.
    "se_atten": {"descriptor": "se_atten", "sel": (24,), "type_one_side": False, "exclude_types": [[0, 0]],
                 "descriptor_options": {"tebd_dim": 4, "attn": 8, "smooth_type_embedding": True},
                 "fitting_input_scale": 10.0, "seed": 41},
    "se_atten_v2": {"descriptor": "se_atten_v2", "sel": (24,), "exclude_types": [[1, 1]],
                    "descriptor_options": {"tebd_dim": 4, "attn": 8, "temperature": 0.5, "attn_dotr": False},
                    "fitting_input_scale": 10.0, "seed": 47},
    # loc_frame: each atom's frame from its nearest type-0 and nearest type-1 neighbor (sel = sel_a + sel_r =
    # (24, 24)); not smooth at rcut nor where the axis neighbors change, smooth everywhere else
    "loc_frame": {"descriptor": "loc_frame", "seed": 53, "descriptor_options": {
        "sel_a": [8, 8], "sel_r": [16, 16], "axis_rule": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]}},
}


@pytest.fixture(scope="session")
def models():
    """Variant name -> model (built once per session)."""
    return {name: make_model(rcut=RCUT, **kwargs) for name, kwargs in MODEL_VARIANTS.items()}


@pytest.fixture(params=sorted(MODEL_VARIANTS))
def model(request, models):
    return models[request.param]


@pytest.fixture(scope="session")
def periodic_system():
    """20 atoms, 2 types, triclinic ~8.6 A cell (rcut 4 < half the face distances)."""
    return periodic_frame(20, seed=0, box=triclinic_box((8.6, 8.4, 8.8), (0.6, -0.4, 0.3)))


@pytest.fixture(scope="session")
def small_cell_system():
    """5 atoms in a ~5 A cell: rcut exceeds half the box, so atoms see their own periodic images."""
    return periodic_frame(5, seed=1, box=triclinic_box((5.0, 4.8, 5.2), (0.3, -0.2, 0.4)))


@pytest.fixture(scope="session")
def tiny_cell_system():
    """2 atoms in a ~3.4 A cell: rcut exceeds the cell length (two shells of images)."""
    return periodic_frame(2, seed=1, box=triclinic_box((3.4, 3.3, 3.6), (0.3, -0.2, 0.4)))


@pytest.fixture(scope="session")
def cluster_system():
    """12-atom non-periodic cluster."""
    return cluster_frame(12, seed=0, size=4.5)

