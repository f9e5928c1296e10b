"""Short NVT molecular dynamics of one CH4 molecule in its 10 A box with the frozen model (ASE).

    python md.py [model.pth] [steps]

Starts from the first validation frame, Langevin thermostat at 300 K, 0.5 fs steps; prints the
potential energy and temperature every 20 steps and writes the trajectory to md.traj.
"""

import sys

import numpy as np
from ase import Atoms, units
from ase.io.trajectory import Trajectory
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from deeppot.calculator import DP
from deeppot.data import DeepmdSystem


def main(model: str = "model.pth", steps: int = 200) -> None:
    frame = DeepmdSystem.load("ch4_data/validation_data", ["H", "C"])
    symbols = [frame.type_names[t] for t in frame.atype]
    atoms = Atoms(symbols, positions=frame.coord[0], cell=frame.box[0], pbc=True)
    atoms.calc = DP(model)
    rng = np.random.default_rng(0)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=rng)
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=300, friction=0.02, fixcm=False, rng=rng)
    with Trajectory("md.traj", "w", atoms) as trajectory:
        dyn.attach(trajectory.write, interval=10)
        dyn.attach(lambda: print(f"step {dyn.nsteps:5d}  Epot {atoms.get_potential_energy():12.6f} eV  "
                                 f"T {atoms.get_temperature():7.1f} K"), interval=20)
        dyn.run(steps)


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["model.pth"]), *(int(a) for a in sys.argv[2:3]))
