"""Translation, rotation and permutation symmetry of energies, forces and virials."""

import numpy as np

from deeppot_test_models import evaluate
from physics_checks import check_permutation, check_rotation, check_translation


def test_translation_periodic(model, periodic_system):
    check_translation(model, *periodic_system)


def test_translation_nonperiodic(model, cluster_system):
    coord, atype = cluster_system
    check_translation(model, coord, atype, None)


def test_rotation_periodic(model, periodic_system):
    check_rotation(model, *periodic_system)


def test_rotation_nonperiodic(model, cluster_system):
    coord, atype = cluster_system
    check_rotation(model, coord, atype, None)


def test_permutation_periodic(model, periodic_system):
    check_permutation(model, *periodic_system)


def test_permutation_nonperiodic(model, cluster_system):
    coord, atype = cluster_system
    check_permutation(model, coord, atype, None)


def test_improper_rotation_nonperiodic(models, cluster_system):
    """se_e2_a only uses distances and dot products: a reflection leaves E invariant too."""
    coord, atype = cluster_system
    model = models["one_side"]
    mirror = np.diag([1.0, -1.0, 1.0])
    ref = evaluate(model, coord, atype, None)
    out = evaluate(model, coord @ mirror, atype, None)
    np.testing.assert_allclose(out["energy"], ref["energy"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["force"], ref["force"] @ mirror, rtol=0, atol=1e-12)


def test_energy_depends_on_types(models, cluster_system):
    """Non-vacuity: swapping the types of two atoms of different type changes the energy."""
    coord, atype = cluster_system
    model = models["one_side"]
    swapped = atype.copy()
    i, j = int(np.flatnonzero(atype == 0)[0]), int(np.flatnonzero(atype == 1)[0])
    swapped[i], swapped[j] = atype[j], atype[i]
    assert abs(evaluate(model, coord, atype)["energy"] - evaluate(model, coord, swapped)["energy"]) > 1e-6
