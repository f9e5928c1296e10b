"""Short molecular dynamics of one CH4 molecule in its 10 A box with the frozen model (ASE).

    python md.py [model.pth] [steps]

Starts from the first validation frame with Maxwell-Boltzmann velocities at 300 K, runs ``steps`` steps of
Langevin NVT at 300 K, then ``steps`` steps of NVE (velocity Verlet), 0.5 fs each. Prints the potential
energy and temperature every 20 steps, then two summary lines: the mean NVT temperature and the NVE
total-energy drift in meV/atom/ps. Writes the trajectory to md.traj.
"""

import sys

import numpy as np
from ase import Atoms, units
from ase.io.trajectory import Trajectory
from ase.md.langevin import Langevin
from ase.md.verlet import VelocityVerlet

try:
    from ase.md.velocitydistribution import thermalize_momenta  # ASE >= 3.29
except ImportError:
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

from deeppot.calculator import DP
from deeppot.data import DeepmdSystem

TIMESTEP_FS = 0.5


def main(model: str = "model.pth", steps: int = 200) -> None:
    frame = DeepmdSystem.load("ch4_data/validation_data", ["H", "C"])
    symbols = [frame.type_names[t] for t in frame.atype]
    atoms = Atoms(symbols, positions=frame.coord[0], cell=frame.box[0], pbc=True)
    atoms.calc = DP(model)
    rng = np.random.default_rng(0)
    thermalize_momenta(atoms, temperature_K=300, rng=rng)
    temperatures, total_energies = [], []

    def report(dyn, label):
        print(f"{label} step {dyn.nsteps:5d}  Epot {atoms.get_potential_energy():12.6f} eV  "
              f"T {atoms.get_temperature():7.1f} K")

    with Trajectory("md.traj", "w", atoms) as trajectory:
        nvt = Langevin(atoms, TIMESTEP_FS * units.fs, temperature_K=300, friction=0.02, fixcm=False, rng=rng)
        nvt.attach(trajectory.write, interval=10)
        nvt.attach(lambda: report(nvt, "NVT"), interval=20)
        nvt.attach(lambda: temperatures.append(atoms.get_temperature()), interval=1)
        nvt.run(steps)
        nve = VelocityVerlet(atoms, TIMESTEP_FS * units.fs)
        nve.attach(trajectory.write, interval=10)
        nve.attach(lambda: report(nve, "NVE"), interval=20)
        nve.attach(lambda: total_energies.append(atoms.get_total_energy()), interval=1)
        nve.run(steps)
    times_ps = np.arange(len(total_energies)) * TIMESTEP_FS * 1e-3
    drift = np.polyfit(times_ps, np.asarray(total_energies) / len(atoms), 1)[0] * 1e3 if steps > 1 else 0.0
    print(f"NVT mean temperature {np.mean(temperatures):.1f} K over {steps} steps")
    print(f"NVE total-energy drift {drift:+.3f} meV/atom/ps over {steps} steps")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["model.pth"]), *(int(a) for a in sys.argv[2:3]))
