"""DP/ZBL through the shipped physics checks (finite differences, invariances, periodic images, forward_lower,
TorchScript), smooth through the switch, repulsive down to 0.3 A, and an NVE collision of two water molecules that
bounces with the energy conserved."""

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.md.verlet import VelocityVerlet

from deeppot.calculator import DP
from deeppot.export.model_file import FrozenEnergyModel, save_model_file
from deeppot_test_models import evaluate
from physics_checks import (
    check_atom_virial_fd,
    check_atom_virial_sum,
    check_forces_fd,
    check_permutation,
    check_replication,
    check_rotation,
    check_translation,
    check_virial_fd,
)
from test_forward_lower import build_blocked_nlist, compare_lower_to_forward, extend_with_ghosts, run_lower
from zbl_models import close_contact_frame, make_zbl_model

VARIANTS = {
    "se_e2_a": dict(type_one_side=False, seed=3),
    "se_atten": dict(descriptor="se_atten", sel=(24,), type_one_side=False, fitting_input_scale=10.0, seed=41,
                     descriptor_options={"tebd_dim": 4, "attn": 8, "smooth_type_embedding": True}),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def zbl(request):
    return make_zbl_model(**VARIANTS[request.param])


def test_finite_differences_cluster(zbl):
    coord, atype, _ = close_contact_frame(False)
    check_forces_fd(zbl, coord, atype, rtol=1e-6)
    check_virial_fd(zbl, coord, atype, rtol=1e-6)
    check_atom_virial_fd(zbl, coord, atype, rtol=1e-6)


def test_finite_differences_periodic(zbl):
    coord, atype, box = close_contact_frame(True)
    check_forces_fd(zbl, coord, atype, box, rtol=1e-6)
    check_virial_fd(zbl, coord, atype, box, rtol=1e-6)
    check_atom_virial_sum(zbl, coord, atype, box, atol=1e-10)


def test_invariances(zbl):
    coord, atype, box = close_contact_frame(True)
    check_translation(zbl, coord, atype, box, atol=1e-10)
    check_rotation(zbl, coord, atype, box, atol=1e-10)
    check_permutation(zbl, coord, atype, box, atol=1e-10)
    check_replication(zbl, coord, atype, box)


def test_forward_lower_and_torchscript(zbl):
    coord, atype, box = close_contact_frame(True)
    compare_lower_to_forward(zbl, coord, atype, box, atol=1e-10, skin=0.5, shuffle_seed=4)
    ext, ext_atype, mapping, _ = extend_with_ghosts(coord, atype, box, zbl.rcut)
    nlist = build_blocked_nlist(ext, ext_atype, len(atype), zbl.rcut, zbl.sel)
    eager = run_lower(zbl, ext, ext_atype, nlist, mapping)
    scripted = run_lower(zbl, ext, ext_atype, nlist, mapping, fn=torch.jit.script(FrozenEnergyModel(zbl)))
    for key in eager:
        np.testing.assert_allclose(scripted[key], eager[key], rtol=1e-13, atol=1e-11, err_msg=key)


@pytest.mark.parametrize("boundary", [0.8, 1.6])
def test_smooth_through_the_switch(zbl, boundary):
    """Two atoms alone: their soft-min distance is their distance; E and F continuous across sw_rmin/sw_rmax."""
    atype = np.array([0, 1])
    direction = np.array([0.0, 0.6, 0.8])
    out = [evaluate(zbl, np.stack([np.zeros(3), r * direction]), atype) for r in (boundary - 1e-7, boundary + 1e-7)]
    assert np.abs(out[0]["force"]).max() > 1e-3
    assert abs(out[0]["energy"] - out[1]["energy"]) < 1e-5
    np.testing.assert_allclose(out[0]["force"], out[1]["force"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("types", [(0, 0), (0, 1), (1, 1)], ids=["O-O", "O-H", "H-H"])
def test_repulsive_down_to_0p3_angstrom(zbl, types):
    """Forces stay finite and push the atoms apart, growing as they approach, from sw_rmin down to 0.3 A."""
    atype = np.array(types)
    direction = np.array([0.6, -0.48, 0.64])
    previous = 0.0
    for r in np.linspace(0.75, 0.3, 10):
        out = evaluate(zbl, np.stack([np.zeros(3), r * direction]), atype)
        push = out["force"][1] @ direction  # along the separation: > 0 pushes atom 1 away
        assert np.all(np.isfinite(out["force"])) and np.isfinite(out["energy"])
        assert push > previous > -1e-12, f"r = {r:.3f} A: force along the separation {push:.3f} eV/A"
        np.testing.assert_allclose(out["force"].sum(axis=0), 0.0, atol=1e-9)
        previous = push


def test_nve_collision_of_two_water_molecules_bounces(tmp_path):
    """Two water molecules thrown at each other (4.7 eV relative kinetic energy) in ASE's velocity Verlet with the
    frozen model: they turn round with the oxygens more than 1 A apart, and the total energy stays within 1% of the
    kinetic energy (time step 0.1 fs)."""
    model = make_zbl_model(rcut=6.0, sel=(24, 24), seed=7)  # rcut 6: the table has decayed to zero there
    path = tmp_path / "zbl.pth"
    save_model_file(model, {}, path)
    water = [[0.0, 0.0, 0.0], [0.757, 0.586, 0.0], [-0.757, 0.586, 0.0]]
    positions = np.array(water + [[x + 3.0, -y, z + 0.2] for x, y, z in water])
    atoms = Atoms("OH2OH2", positions=positions, pbc=False)
    atoms.calc = DP(str(path))
    velocity = 0.05 * units.Angstrom / units.fs  # each molecule, towards the other: 0.1 A/fs relative
    atoms.set_velocities(np.array([[velocity, 0, 0]] * 3 + [[-velocity, 0, 0]] * 3))
    start, kinetic = atoms.get_total_energy(), atoms.get_kinetic_energy()
    distances, energies = [], []
    dyn = VelocityVerlet(atoms, timestep=0.1 * units.fs)
    for _ in range(400):
        dyn.run(1)
        distances.append(atoms.get_distance(0, 3))
        energies.append(atoms.get_total_energy())
    closest = int(np.argmin(distances))
    assert min(distances) > 1.0, f"the oxygens came within {min(distances):.2f} A"
    assert closest < len(distances) - 20 and distances[-1] > min(distances) + 0.2, "no bounce"
    drift = np.max(np.abs(np.array(energies) - start))
    assert drift < 0.01 * kinetic, f"total energy drifted by {drift:.4f} eV (kinetic energy {kinetic:.2f} eV)"


def test_training_takes_the_eager_step():
    """The compiled float64 training step (train/step.py) is not verified for DP/ZBL: fast_step refuses it by name."""
    from deeppot.train.loss import EnergyLoss
    from deeppot.train.step import fast_step_refusal

    assert "DP/ZBL" in fast_step_refusal(make_zbl_model(), EnergyLoss(1e-3), None)
