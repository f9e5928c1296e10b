"""Smoothness at rcut (spec 3.3): a neighbor crossing rcut changes E and F continuously (C2 switch),
and beyond rcut it contributes exactly nothing."""

import numpy as np
import pytest

from deeppot_test_models import evaluate

RC = 4.0


@pytest.fixture(scope="module")
def crossing(models):
    """A 6-atom cluster and a probe atom moved along +x away from the cluster's right-most atom A.

    All other cluster atoms have x < x_A - 0.5, so near r = |probe - A| ~ rcut they are more than
    rcut + 0.5 away from the probe: A is the only pair that crosses rcut.
    """
    cluster = np.array(
        [
            [2.0, 0.3, -0.2],  # A
            [0.9, 1.1, 0.4],
            [0.2, -0.8, 0.3],
            [-0.7, 0.5, -1.0],
            [1.1, -1.2, -0.9],
            [-0.4, -0.3, 1.2],
        ]
    )
    assert np.all(cluster[1:, 0] < cluster[0, 0] - 0.5)
    ctype = np.array([1, 0, 1, 0, 1, 0])
    direction = np.array([1.0, 0.02, -0.03])
    direction /= np.linalg.norm(direction)

    def frame(r, probe_type):
        coord = np.vstack([cluster, cluster[0] + r * direction])
        return coord, np.append(ctype, probe_type)

    return frame, cluster, ctype, direction


@pytest.mark.parametrize("name", ["one_side", "two_side_resnet_dt", "gelu", "se_e2_r", "se_e3", "hybrid",
                                  "type_embedding_two_side", "loc_frame", "se_atten",
                                  "se_atten_v2", "hybrid_mixed"])
@pytest.mark.parametrize("probe_type", [0, 1])
def test_no_contribution_beyond_rcut(models, crossing, name, probe_type):
    frame, cluster, ctype, _ = crossing
    model = models[name]
    alone = evaluate(model, cluster, ctype)
    single = evaluate(model, np.zeros((1, 3)), np.array([probe_type]))
    for r in (RC, RC + 1e-9, RC + 1e-3, RC + 0.3, RC + 3.0):
        coord, atype = frame(r, probe_type)
        out = evaluate(model, coord, atype)
        np.testing.assert_allclose(out["energy"], alone["energy"] + single["energy"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(out["atom_energy"][:-1], alone["atom_energy"], rtol=0, atol=1e-13)
        np.testing.assert_allclose(out["force"][:-1], alone["force"], rtol=0, atol=1e-13)
        np.testing.assert_array_equal(out["force"][-1], 0.0)
        np.testing.assert_allclose(out["virial"], alone["virial"], rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", ["one_side", "two_side_resnet_dt", "gelu", "se_e2_r", "se_e3", "hybrid",
                                  "type_embedding_two_side", "se_atten", "se_atten_v2", "hybrid_mixed"])
def test_energy_and_force_vanish_continuously_at_rcut(models, crossing, name):
    """With w ~ (1-u)^3 near rcut: E(rc - s) - E(rc) ~ s^3 and F ~ s^2."""
    frame, _, _, direction = crossing
    model = models[name]
    at_rc = evaluate(model, *frame(RC, 0))
    de, df = [], []
    for s in (1e-1, 1e-2, 1e-3):
        out = evaluate(model, *frame(RC - s, 0))
        de.append(abs(float(out["energy"] - at_rc["energy"])))
        df.append(np.abs(out["force"] - at_rc["force"]).max())
    assert de[0] > 1e-7 and df[0] > 1e-6, "degenerate test: the crossing pair does not contribute"
    # cubic / quadratic decay: factor 1e-3 / 1e-2 per decade of s (allow 3x slack)
    assert de[1] < 3e-3 * de[0] and de[2] < 3e-3 * de[1], de
    assert df[1] < 3e-2 * df[0] and df[2] < 3e-2 * df[1], df
    # and the force on the probe along the line is -dE/dr right up to rcut (5-point stencil)
    h = 1e-4  # 2h < s, so the stencil stays inside rcut

    def energy(r):
        return float(evaluate(model, *frame(r, 0))["energy"])

    for s in (1e-1, 1e-2):
        out = evaluate(model, *frame(RC - s, 0))
        r = RC - s
        dedr = (-energy(r + 2 * h) + 8 * energy(r + h) - 8 * energy(r - h) + energy(r - 2 * h)) / (12 * h)
        np.testing.assert_allclose(out["force"][-1] @ direction, -dedr, rtol=1e-6, atol=5e-11)


def test_walk_across_rcut(models, crossing):
    """Tiny steps through rcut: no jump in E (consecutive changes bounded by |F| * step) nor in F."""
    frame, _, _, direction = crossing
    model = models["two_side_resnet_dt"]
    step = 2e-4
    rs = RC + step * np.arange(-100, 101)
    energies, forces = [], []
    for r in rs:
        out = evaluate(model, *frame(r, 1))
        energies.append(float(out["energy"]))
        forces.append(out["force"])
    energies, forces = np.array(energies), np.array(forces)
    fmax = np.abs(forces[:, -1]).max()
    assert fmax > 0 and fmax < 1e-5  # within 0.02 A of rcut the probe force is O(s^2)
    assert np.abs(np.diff(energies)).max() <= fmax * step * 1.01 + 1e-13
    assert np.abs(np.diff(forces, axis=0)).max() < 1e-6
    # the work along the path (Simpson's rule, 200 intervals) equals the energy change
    f_line = forces[:, -1] @ direction
    weights = np.ones(len(rs))
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    work = -step / 3.0 * np.sum(weights * f_line)
    np.testing.assert_allclose(energies[-1] - energies[0], work, rtol=0, atol=1e-13)
    # beyond rcut: constant energy
    beyond = rs > RC
    np.testing.assert_allclose(energies[beyond], energies[beyond][0], rtol=0, atol=1e-13)
