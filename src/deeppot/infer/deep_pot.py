"""Evaluate a frozen model (or a training checkpoint) on numpy arrays, as ``deepmd.infer``:
``DeepPot`` for energy models, ``DeepDipole`` and ``DeepPolar`` for tensor models. Each refuses a file that
holds another kind of model and names the class that loads it."""

import os
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch

from deeppot.errors import DeeppotError, ModelFileError
from deeppot.export.freeze import load_model_or_checkpoint
from deeppot.model import MODELS
from deeppot.modifier import deserialize_modifier
from deeppot.runtime import tune_allocator

# centers (atoms x frames) evaluated together: about 256 keeps the working set in cache, which was
# faster per atom than larger chunks on the development machine (benchmarks/bench_water.py)
DEFAULT_BATCH_ATOMS = int(os.environ.get("DP_INFER_BATCH_SIZE", "256"))

class DeepEval:
    """A loaded model and what every evaluator shares: its metadata and the frame loop."""

    fitting_type = ""  # the kind of model this evaluator takes (a key of deeppot.model.MODELS)

    def __init__(self, model_file: Union[str, Path]):
        tune_allocator()
        self._attach(*load_model_or_checkpoint(Path(model_file)), str(model_file))

    def _attach(self, model, metadata: Dict, model_file: str) -> None:
        held = _fitting_type(model)
        if held != self.fitting_type:
            raise ModelFileError(f"{model_file}: holds a '{held}' model, not a '{self.fitting_type}' one; load it with "
                                 f"deeppot.infer.{EVALUATORS[held].__name__}")
        self.model, self.metadata, self.model_file = model, metadata, model_file
        # a long-range term (DPLR) the file carries beside the model: added to energy, force and virial
        self.modifier = deserialize_modifier(metadata["modifier"]) if metadata.get("modifier") else None

    @staticmethod
    def load(model_file: Union[str, Path]) -> "DeepEval":
        """A DeepPot, DeepDipole or DeepPolar, whichever the model in ``model_file`` needs."""
        tune_allocator()
        model, metadata = load_model_or_checkpoint(Path(model_file))
        cls = EVALUATORS[_fitting_type(model)]
        evaluator = cls.__new__(cls)
        evaluator._attach(model, metadata, str(model_file))
        return evaluator

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

    def _evaluate(
        self,
        coords: np.ndarray,
        cells: Optional[np.ndarray],
        atom_types: Union[np.ndarray, List[int]],
        fparam: Optional[np.ndarray],
        aparam: Optional[np.ndarray],
        **options,
    ) -> Tuple[Dict[str, np.ndarray], int, int]:
        """The model's outputs over all frames (concatenated along frames), nframes and natoms. coords:
        nf x N x 3 (or nf x 3N, Angstrom); cells: nf x 9 or nf x 3 x 3 (rows a, b, c) or None for no PBC;
        atom_types: N (or nf x N) indices into the type_map, -1 for a virtual atom."""
        atom_types = np.asarray(atom_types, dtype=np.int64)
        natoms = atom_types.shape[-1]
        coords = np.asarray(coords, dtype=np.float64).reshape(-1, natoms, 3)
        nframes = coords.shape[0]
        atom_types = np.broadcast_to(atom_types.reshape(-1, natoms), (nframes, natoms))
        if atom_types.min() < -1 or atom_types.max() >= self.model.ntypes:
            raise DeeppotError(f"atom_types must be in 0..{self.model.ntypes - 1} (type_map {self.model.type_map}), "
                               "or -1 for a virtual atom")
        arrays = {
            "coord": coords,
            "atype": atom_types,
            "box": None if cells is None else np.asarray(cells, dtype=np.float64).reshape(nframes, 3, 3),
            "fparam": None if fparam is None else np.asarray(fparam, dtype=np.float64).reshape(nframes, -1),
            "aparam": None if aparam is None else np.asarray(aparam, dtype=np.float64).reshape(nframes, natoms, -1),
        }
        parts: Dict[str, List[np.ndarray]] = {}
        for inputs in _frame_batches(arrays, max(1, DEFAULT_BATCH_ATOMS // natoms)):
            out = self.model(inputs["coord"], inputs["atype"], inputs["box"], inputs["fparam"], inputs["aparam"],
                             chunk_atoms=DEFAULT_BATCH_ATOMS, **options)
            for key, value in out.items():
                parts.setdefault(key, []).append(value.detach().numpy())
        return {key: np.concatenate(value) for key, value in parts.items()}, nframes, natoms


def _fitting_type(model) -> str:
    """The fitting type (a key of ``deeppot.model.MODELS``) of a model instance."""
    return next(name for name, cls in MODELS.items() if isinstance(model, cls))  # a DP/ZBL model is an energy model


def _frame_batches(arrays: Dict[str, Optional[np.ndarray]], frames_per_call: int) -> Iterator[Dict]:
    """Torch tensors of consecutive groups of ``frames_per_call`` frames."""
    nframes = arrays["coord"].shape[0]
    for start in range(0, nframes, frames_per_call):
        part = slice(start, start + frames_per_call)
        yield {k: None if v is None else torch.from_numpy(np.array(v[part])) for k, v in arrays.items()}


class DeepPot(DeepEval):
    """A frozen energy model, or a training checkpoint (as ``dp test`` accepts). Units: Angstrom, eV,
    eV/Angstrom; virial in eV."""

    fitting_type = "ener"

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
        atom energy (nf x N x 1) and atom virial (nf x N x 9). With a modifier in the file (DPLR), energy, force
        and virial include its term; the atomic terms are the model's alone (the reciprocal-space sum has none).
        """
        out, nframes, natoms = self._evaluate(coords, cells, atom_types, fparam, aparam, do_atomic_virial=atomic)
        energy, force, virial = out["energy"].reshape(nframes, 1), out["force"], out["virial"]
        if self.modifier is not None:
            extra = self.modifier.evaluate_numpy(np.asarray(coords, dtype=np.float64).reshape(nframes, natoms, 3),
                                                 np.asarray(atom_types),
                                                 None if cells is None else np.reshape(cells, (nframes, 3, 3)))
            energy = energy + extra["energy"].reshape(nframes, 1)
            force, virial = force + extra["force"], virial + extra["virial"]
        if not atomic:
            return energy, force, virial
        return energy, force, virial, out["atom_energy"].reshape(nframes, natoms, 1), out["atom_virial"]


class DeepTensor(DeepEval):
    """A frozen dipole or polar model: atomic tensors and their sum over atoms, in the labels' units."""

    def eval(
        self,
        coords: np.ndarray,
        cells: Optional[np.ndarray],
        atom_types: Union[np.ndarray, List[int]],
        atomic: bool = True,
        fparam: Optional[np.ndarray] = None,
        aparam: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """coords: nf x N x 3 (or nf x 3N, Angstrom); cells: nf x 9 (or nf x 3 x 3) or None for no PBC;
        atom_types: N (or nf x N) indices into the model's type_map.

        With ``atomic`` (the default, as DeePMD-kit's ``DeepTensor.eval``) returns the atomic tensors
        nf x N x ncomp (zero for atoms of types outside ``get_sel_type()``), else the global tensor nf x ncomp;
        ncomp = 3 for a dipole, 9 (row-major 3 x 3) for a polarizability."""
        out, nframes, natoms = self._evaluate(coords, cells, atom_types, fparam, aparam)
        name = self.model.output_name
        if atomic:
            return out[name].reshape(nframes, natoms, -1)
        return out["global_" + name].reshape(nframes, -1)

    def get_sel_type(self) -> List[int]:
        """Types whose atoms carry the tensor (the others give zero)."""
        return self.model.get_sel_type()

    def label_names(self) -> List[str]:
        """The data labels of this model: the global one and the atomic one (spec section 4)."""
        return [self.model.label_name, "atom_" + self.model.label_name]

    def output_dim(self) -> int:
        """Components of the tensor: 3 or 9."""
        return int(self.model.output_dim)


class DeepDipole(DeepTensor):
    """A frozen dipole model: ``eval`` gives atomic dipoles nf x N x 3 or the frame dipole nf x 3."""

    fitting_type = "dipole"


class DeepPolar(DeepTensor):
    """A frozen polarizability model: ``eval`` gives atomic polarizabilities nf x N x 9 or the frame's nf x 9."""

    fitting_type = "polar"


EVALUATORS = {cls.fitting_type: cls for cls in (DeepPot, DeepDipole, DeepPolar)}
"""Fitting type (a key of ``deeppot.model.MODELS``) -> the evaluator of its models."""
