"""``DeepPot``: evaluate a frozen model on numpy arrays, as ``deepmd.infer.DeepPot``."""

import os
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
import torch

from deeppot.errors import DeeppotError
from deeppot.export.freeze import load_model_or_checkpoint
from deeppot.runtime import tune_allocator

# centers (atoms x frames) evaluated together: about 256 keeps the working set in cache, which was
# faster per atom than larger chunks on the development machine (benchmarks/bench_water.py)
DEFAULT_BATCH_ATOMS = int(os.environ.get("DP_INFER_BATCH_SIZE", "256"))


class DeepPot:
    """A frozen energy model, or a training checkpoint (as ``dp test`` accepts). Units: Angstrom, eV,
    eV/Angstrom; virial in eV."""

    def __init__(self, model_file: Union[str, Path]):
        tune_allocator()
        self.model, self.metadata = load_model_or_checkpoint(Path(model_file))
        self.model_file = str(model_file)

    def get_type_map(self) -> List[str]:
        return list(self.model.type_map)

    def get_rcut(self) -> float:
        return float(self.model.rcut)

    def get_ntypes(self) -> int:
        return self.model.ntypes

    def get_dim_fparam(self) -> int:
        return self.model.fitting.numb_fparam

    def get_dim_aparam(self) -> int:
        return self.model.fitting.numb_aparam

    def eval(
        self,
        coords: np.ndarray,
        cells: Optional[np.ndarray],
        atom_types: Union[np.ndarray, List[int]],
        atomic: bool = False,
        fparam: Optional[np.ndarray] = None,
        aparam: Optional[np.ndarray] = None,
    ) -> Tuple[np.ndarray, ...]:
        """coords: nf x N x 3 (or nf x 3N); cells: nf x 9 (or nf x 3 x 3) or None for no PBC;
        atom_types: N (or nf x N) indices into the model's type_map.

        Returns energy (nf x 1), force (nf x N x 3), virial (nf x 9) and, with ``atomic``,
        atom energy (nf x N x 1) and atom virial (nf x N x 9).
        """
        atom_types = np.asarray(atom_types, dtype=np.int64)
        natoms = atom_types.shape[-1]
        coords = np.asarray(coords, dtype=np.float64).reshape(-1, natoms, 3)
        nframes = coords.shape[0]
        atom_types = np.broadcast_to(atom_types.reshape(-1, natoms), (nframes, natoms))
        if atom_types.min() < -1 or atom_types.max() >= self.model.ntypes:
            raise DeeppotError(f"atom_types must be in 0..{self.model.ntypes - 1} (type_map {self.model.type_map}), "
                               "or -1 for a virtual atom")
        cells = None if cells is None else np.asarray(cells, dtype=np.float64).reshape(nframes, 3, 3)
        fparam = None if fparam is None else np.asarray(fparam, dtype=np.float64).reshape(nframes, -1)
        aparam = None if aparam is None else np.asarray(aparam, dtype=np.float64).reshape(nframes, natoms, -1)
        frames_per_call = max(1, DEFAULT_BATCH_ATOMS // natoms)
        results = []
        for start in range(0, nframes, frames_per_call):
            part = slice(start, start + frames_per_call)

            def tensor(array):
                return None if array is None else torch.from_numpy(np.array(array[part]))

            out = self.model(
                tensor(coords), tensor(atom_types), tensor(cells), tensor(fparam), tensor(aparam),
                do_atomic_virial=atomic, chunk_atoms=DEFAULT_BATCH_ATOMS,
            )
            results.append({k: v.detach().numpy() for k, v in out.items()})
        energy = np.concatenate([r["energy"] for r in results]).reshape(nframes, 1)
        force = np.concatenate([r["force"] for r in results])
        virial = np.concatenate([r["virial"] for r in results])
        if not atomic:
            return energy, force, virial
        atom_energy = np.concatenate([r["atom_energy"] for r in results]).reshape(nframes, natoms, 1)
        atom_virial = np.concatenate([r["atom_virial"] for r in results])
        return energy, force, virial, atom_energy, atom_virial
