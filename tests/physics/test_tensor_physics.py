"""Physics of the dipole and polarizability models (physics_checks' tensor checks): rotation (mu -> mu R,
alpha -> R^T alpha R), translation, permutation and periodic images, periodic and not."""

import pytest

from deeppot_test_models import make_model
from physics_checks import (
    assert_sel_not_exceeded,
    check_tensor_permutation,
    check_tensor_replication,
    check_tensor_rotation,
    check_tensor_translation,
)

TENSOR_VARIANTS = {
    "dipole": dict(fitting="dipole"),
    "dipole_sel_type": dict(fitting="dipole", atom_exclude_types=[1], type_one_side=False, seed=3),
    "polar_diag": dict(fitting="polar", fitting_options=dict(scale=[1.5, 0.5])),
    "polar_full": dict(fitting="polar", fitting_options=dict(fit_diag=False, shift_diag=False), seed=5),
    # a model-level type embedding: one embedding net, one (shared) fitting net for both types
    "dipole_type_embedding": dict(fitting="dipole", type_embedding=[4], type_one_side=False, seed=7),
}


@pytest.fixture(scope="module", params=list(TENSOR_VARIANTS))
def tensor_model(request):
    return make_model(**TENSOR_VARIANTS[request.param])


def test_rotation(tensor_model, periodic_system, cluster_system):
    check_tensor_rotation(tensor_model, *periodic_system)
    check_tensor_rotation(tensor_model, *cluster_system, None)


def test_translation(tensor_model, periodic_system, cluster_system):
    check_tensor_translation(tensor_model, *periodic_system)
    check_tensor_translation(tensor_model, *cluster_system, None)


def test_permutation(tensor_model, periodic_system, cluster_system):
    check_tensor_permutation(tensor_model, *periodic_system)
    check_tensor_permutation(tensor_model, *cluster_system, None)


def test_periodic_images(tensor_model, periodic_system):
    assert_sel_not_exceeded(tensor_model, *periodic_system)
    check_tensor_replication(tensor_model, *periodic_system)
