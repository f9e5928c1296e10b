"""What loc_frame promises beyond the shipped checks (which it passes as the "loc_frame" model variant): a frame
from its axis neighbors or a clear error, and no switch at rcut (DeePMD-kit's definition is not smooth)."""

import numpy as np
import pytest

from deeppot.errors import DataError
from deeppot_test_models import evaluate


def test_atom_without_its_axis_neighbors_is_an_error(models):
    """The variant's axis rule needs a type-0 and a type-1 neighbor within rcut (4 A)."""
    model = models["loc_frame"]
    coord = np.array([[0.0, 0.0, 0.0], [1.0, 0.2, 0.0], [0.1, 1.1, 0.3], [2.0, 0.9, -0.4]])
    ok = evaluate(model, coord, np.array([0, 1, 0, 1]))
    assert np.all(np.isfinite(ok["force"])) and np.abs(ok["force"]).max() > 1e-4
    with pytest.raises(DataError, match="atom 0 of frame 0 has neighbors but not the two axis neighbors"):
        evaluate(model, coord, np.array([0, 1, 1, 1]))  # atom 0 (type 0) has no type-0 neighbor


def test_isolated_atoms_have_a_finite_energy(models):
    """No neighbors at all: no frame is needed (every slot is padding), and nothing is NaN."""
    out = evaluate(models["loc_frame"], np.array([[0.0, 0.0, 0.0], [9.0, 0.0, 0.0]]), np.array([0, 1]))
    assert np.all(np.isfinite(out["atom_energy"])) and np.all(out["force"] == 0.0)


def test_energy_jumps_when_a_neighbor_crosses_rcut(models):
    """No switch: a neighbor just inside rcut contributes its 1/r row in full, just outside nothing."""
    model = models["loc_frame"]
    cluster = np.array([[0.0, 0.0, 0.0], [1.0, 0.2, 0.0], [0.1, 1.1, 0.3], [-0.9, 0.4, 0.8], [2.0, -0.8, 0.2]])
    atype = np.array([0, 1, 0, 1, 0])
    probe = np.array([[4.0, 0.0, 0.0]])  # rcut (4 A) from atom 0; atom 3 is farther than rcut from it
    inside = evaluate(model, np.vstack([cluster, probe * (1 - 1e-9)]), np.append(atype, 1))
    outside = evaluate(model, np.vstack([cluster, probe * (1 + 1e-9)]), np.append(atype, 1))
    assert abs(float(inside["atom_energy"][0]) - float(outside["atom_energy"][0])) > 1e-4
    np.testing.assert_allclose(inside["atom_energy"][3], outside["atom_energy"][3], rtol=0, atol=1e-12)
