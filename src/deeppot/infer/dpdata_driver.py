"""dpdata driver ``deeppot``: label dpdata systems with a frozen deeppot model.

Registered through the ``dpdata.plugins`` entry point, so after ``pip install`` it needs no import::

    import dpdata
    labeled = dpdata.System("POSCAR", fmt="vasp/poscar").predict(driver="deeppot", model="model.pth")

Units follow dpdata and deeppot alike: energies eV, forces eV/Angstrom, virials eV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dpdata.driver import Driver

from deeppot.errors import DeeppotError


@Driver.register("deeppot")
class DeeppotDriver(Driver):
    """Energies, forces and virials of a frozen deeppot model for dpdata systems.

    Parameters
    ----------
    model
        The frozen model file (``deeppot freeze`` output).
    """

    def __init__(self, model: str | Path) -> None:
        # imported here: dpdata imports this module at ``import dpdata``, which should not load torch
        from deeppot.infer.deep_pot import DeepPot

        self.dp = DeepPot(model)

    def label(self, data: dict) -> dict:
        """Add the model's labels to dpdata system data.

        Parameters
        ----------
        data
            dpdata system data: ``atom_names`` (element names), ``atom_types`` (N,) indices into
            them, ``coords`` (nf, N, 3) Angstrom, ``cells`` (nf, 3, 3) Angstrom, optional
            ``nopbc``.

        Returns
        -------
        dict
            ``data`` with ``energies`` (nf,) eV, ``forces`` (nf, N, 3) eV/Angstrom and
            ``virials`` (nf, 3, 3) eV (row-major, as DeePMD-kit's 9-component virial).

        Raises
        ------
        DeeppotError
            When an element of the system is not in the model's type_map, or the model needs
            frame or atomic parameters, which dpdata systems do not carry.
        """
        if self.dp.get_dim_fparam() or self.dp.get_dim_aparam():
            raise DeeppotError(
                f"{self.dp.model_file}: the model needs fparam/aparam, which a dpdata system does not "
                "carry. Evaluate it with deeppot.infer.DeepPot.eval(..., fparam=..., aparam=...) instead."
            )
        type_map = self.dp.get_type_map()
        atom_types = np.asarray(data["atom_types"], dtype=np.int64)
        used = [data["atom_names"][t] for t in np.unique(atom_types)]
        missing = [name for name in used if name not in type_map]
        if missing:
            raise DeeppotError(
                f"{self.dp.model_file}: elements {missing} of the system are not in the model's type_map "
                f"{type_map}. Use a model trained on them."
            )
        lookup = np.array([type_map.index(n) if n in type_map else -1 for n in data["atom_names"]], dtype=np.int64)
        coords = np.asarray(data["coords"], dtype=np.float64)
        nframes, natoms = coords.shape[:2]
        cells = None if data.get("nopbc") else np.asarray(data["cells"], dtype=np.float64).reshape(nframes, 9)
        energy, force, virial = self.dp.eval(coords, cells, lookup[atom_types])
        labeled = dict(data)
        labeled["energies"] = energy.reshape(nframes)
        labeled["forces"] = force.reshape(nframes, natoms, 3)
        labeled["virials"] = virial.reshape(nframes, 3, 3)
        return labeled
