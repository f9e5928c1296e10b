"""The ASE calculator on a frozen model: properties, conventions, and a short NVT run."""

import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.calculator import PropertyNotImplementedError
from ase.md.langevin import Langevin

from deeppot.calculator import DP
from deeppot.config import validate_input
from deeppot.data import DeepmdSystem
from deeppot.export.model_file import save_model_file
from deeppot.infer import DeepPot
from deeppot.train.trainer import Trainer
from helpers import WATER, small_water_input


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ase")
    trainer = Trainer(validate_input(small_water_input(numb_steps=0)), output_dir=folder)
    path = folder / "model.pth"
    save_model_file(trainer.model, trainer.model_params(), path)
    return path


@pytest.fixture()
def water_atoms():
    system = DeepmdSystem.load(str(WATER / "data_3"), ["O", "H"])
    symbols = [system.type_names[t] for t in system.atype]
    return Atoms(symbols, positions=system.coord[0], cell=system.box[0], pbc=True)


def test_properties_match_deeppot(model_file, water_atoms):
    atoms = water_atoms
    atoms.calc = DP(model_file)
    dp = DeepPot(model_file)
    types = [dp.get_type_map().index(s) for s in atoms.get_chemical_symbols()]
    e, f, v = dp.eval(atoms.positions[None], atoms.cell.array.reshape(1, 9), types)
    assert atoms.get_potential_energy() == pytest.approx(e[0, 0], abs=1e-10)
    assert atoms.get_potential_energy(force_consistent=True) == pytest.approx(e[0, 0], abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), f[0], atol=1e-12)
    assert atoms.get_potential_energies().sum() == pytest.approx(e[0, 0], abs=1e-8)
    virial = v[0].reshape(3, 3)
    expected = -0.5 * (virial + virial.T) / atoms.get_volume()
    np.testing.assert_allclose(atoms.get_stress(voigt=False), expected, atol=1e-14)


def test_stress_is_strain_derivative(model_file, water_atoms):
    atoms = water_atoms
    atoms.calc = DP(model_file)
    stress = atoms.get_stress(voigt=False)
    h = 1e-5
    for a, b in ((0, 0), (1, 2), (0, 1)):
        values = []
        for sign in (1, -1):
            strained = atoms.copy()
            eps = np.zeros((3, 3))
            eps[a, b] = eps[b, a] = sign * h / 2 if a != b else sign * h
            deform = np.eye(3) + eps
            strained.set_cell(atoms.cell.array @ deform, scale_atoms=True)
            strained.calc = DP(model_file)
            values.append(strained.get_potential_energy())
        derivative = (values[0] - values[1]) / (2 * h)
        expected = stress[a, b] * atoms.get_volume()  # symmetric strain: dE = V sigma_ab h
        assert derivative == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_molecule_has_no_stress(model_file):
    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    atoms.calc = DP(model_file)
    assert np.isfinite(atoms.get_potential_energy())
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_unknown_element_is_reported(model_file):
    atoms = Atoms("OC", positions=[[0, 0, 0], [1.2, 0, 0]])
    atoms.calc = DP(model_file)
    with pytest.raises(Exception, match="C"):
        atoms.get_potential_energy()


def test_short_nvt_run(model_file, water_atoms):
    atoms = water_atoms
    atoms.calc = DP(model_file)
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=300, friction=0.02, fixcm=False,
                   rng=np.random.default_rng(0))
    start = atoms.positions.copy()
    dyn.run(10)
    assert np.isfinite(atoms.get_potential_energy())
    assert np.abs(atoms.positions - start).max() > 0
    assert dyn.nsteps == 10
