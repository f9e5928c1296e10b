"""ASE calculator for frozen deeppot models: ``from deeppot.calculator import DP``."""

from typing import Dict, Optional

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from deeppot.errors import DeeppotError
from deeppot.infer.deep_pot import DeepPot


class DP(Calculator):
    """Energy (eV), free_energy (= energy), energies (per atom), forces (eV/Angstrom), virial (3x3, eV)
    and, for periodic cells, stress (eV/Angstrom^3, Voigt xx yy zz yz xz xy, stress = -virial/V).

    ``type_dict`` maps chemical symbols to model types; by default the model's type_map.
    ``atoms.info["fparam"]`` and ``atoms.info["aparam"]`` are passed to models that take them.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "virial", "stress"]
    name = "DP"

    def __init__(self, model, label: str = "DP", type_dict: Optional[Dict[str, int]] = None, **kwargs):
        super().__init__(label=label, **kwargs)
        self.dp = model if isinstance(model, DeepPot) else DeepPot(model)
        self.type_dict = type_dict or {name: i for i, name in enumerate(self.dp.get_type_map())}

    def calculate(self, atoms=None, properties=("energy", "forces", "virial"), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        missing = sorted(set(atoms.get_chemical_symbols()) - set(self.type_dict))
        if missing:
            raise DeeppotError(f"elements {missing} are not in the model's type map {list(self.type_dict)}")
        types = np.array([self.type_dict[s] for s in atoms.get_chemical_symbols()])
        periodic = bool(atoms.pbc.any())
        cell = atoms.cell.array.reshape(1, 9) if periodic else None
        fparam = atoms.info.get("fparam")
        aparam = atoms.info.get("aparam")
        atomic = "energies" in properties  # per-atom terms cost extra: only when asked for
        out = self.dp.eval(atoms.positions.reshape(1, -1, 3), cell, types, atomic=atomic, fparam=fparam, aparam=aparam)
        energy, forces, virial = out[0], out[1], out[2]
        self.results["energy"] = float(energy[0, 0])
        self.results["free_energy"] = float(energy[0, 0])
        if atomic:
            self.results["energies"] = out[3][0, :, 0].copy()
        self.results["forces"] = forces[0].copy()
        virial3 = virial[0].reshape(3, 3)
        self.results["virial"] = virial3.copy()
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError("stress needs a periodic cell")
        if periodic:
            stress = -0.5 * (virial3 + virial3.T) / atoms.get_volume()
            self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]].copy()
