"""``deeppot model-devi``: model deviation of frozen models on data systems or a LAMMPS dump, written to
model_devi.out as ``dp model-devi`` does (formulas and file layout in :mod:`deeppot.infer.model_devi`)."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from deeppot.data import DeepmdSystem, expand_systems
from deeppot.data.hdf5 import H5_SUFFIXES
from deeppot.errors import DataError, ModelFileError, OptionError
from deeppot.infer.deep_pot import DeepPot
from deeppot.infer.model_devi import append_model_devi_out, model_devi_columns

log = logging.getLogger("deeppot")

MODELS_TYPE_MAP_HINT = ("The models cannot evaluate elements they were not trained on: compute the deviation on "
                        "systems of their elements only.")


@dataclass
class Frames:
    """What the models are evaluated on: coord nf x N x 3 (Angstrom), box nf x 3 x 3 or None, atype N
    (model types), fparam nf x k / aparam nf x N x k or None, labels {energy nf, force nf x N x 3,
    virial nf x 9} (only those present)."""

    name: str
    coord: np.ndarray
    box: Optional[np.ndarray]
    atype: np.ndarray
    fparam: Optional[np.ndarray]
    aparam: Optional[np.ndarray]
    labels: Dict[str, np.ndarray]


def _check_options(models: List[str], frequency: int, real_error: bool, relative, relative_v) -> None:
    if not models:
        raise OptionError("-m/--models: name the frozen models, e.g. -m graph.000.pth graph.001.pth graph.002.pth")
    if len(models) < 2 and not real_error:
        raise OptionError(f"-m/--models: only {models[0]}; a deviation needs at least two models "
                          "(or --real_error to compare one model with the labels)")
    if frequency < 1:
        raise OptionError(f"-f/--frequency {frequency}: the step between frames must be at least 1")
    for option, level in (("--relative", relative), ("--relative_v", relative_v)):
        if level is not None and not level > 0:
            raise OptionError(f"{option} {level}: the level is added to the magnitude it divides by; "
                              "give a positive number (e.g. 1.0)")


def load_models(models: List[str]) -> List[DeepPot]:
    """The models, refused unless they share type_map, dim_fparam and dim_aparam."""
    for path in models:
        if not Path(path).is_file():
            raise ModelFileError(f"{path}: model file not found; check -m/--models")
    dps = [DeepPot(path) for path in models]
    first = dps[0]
    for path, dp in zip(models[1:], dps[1:]):
        if dp.get_type_map() != first.get_type_map():
            raise ModelFileError(
                f"{path}: type_map {dp.get_type_map()} differs from {models[0]}'s {first.get_type_map()}; "
                "model deviation compares models trained with the same type_map"
            )
        for what, mine, theirs in (("dim_fparam", dp.get_dim_fparam(), first.get_dim_fparam()),
                                   ("dim_aparam", dp.get_dim_aparam(), first.get_dim_aparam())):
            if mine != theirs:
                raise ModelFileError(f"{path}: {what} = {mine} but {models[0]} has {theirs}; "
                                     "use models trained with the same frame/atomic parameters")
    return dps


def is_lammps_dump(path: Path) -> bool:
    """A file whose first line is LAMMPS's ``ITEM: TIMESTEP``."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.readline().strip() == "ITEM: TIMESTEP"


def read_lammps_dump(path: Path, type_map: List[str], names: Optional[List[str]], numb_fparam: int,
                     numb_aparam: int) -> Frames:
    """Frames of a LAMMPS dump (atoms ordered by id). LAMMPS type k is ``names[k-1]`` (``--type-map``),
    or without names model type k-1, as ``pair_coeff * *`` without element names."""
    import dpdata  # only dumps need it

    if numb_fparam or numb_aparam:
        raise DataError(f"{path}: a LAMMPS dump carries no fparam/aparam, which these models need; "
                        "convert the frames to deepmd/npy and add fparam.npy / aparam.npy")
    try:
        system = dpdata.System(str(path), fmt="lammps/dump")
    except Exception as exc:  # dpdata raises assorted errors on malformed dumps
        raise DataError(f"{path}: cannot read it as a LAMMPS dump ({exc.__class__.__name__}: {exc})") from None
    lammps_types = np.asarray(system["atom_types"], dtype=np.int64)  # LAMMPS type - 1
    ntypes = int(lammps_types.max()) + 1
    if names is None:
        if ntypes > len(type_map):
            raise DataError(f"{path}: LAMMPS type {ntypes} but the models know {len(type_map)} types {type_map}; "
                            "name the LAMMPS types with -t/--type-map (e.g. -t O H)")
        lookup = np.arange(ntypes)
    else:
        if ntypes > len(names):
            raise OptionError(f"-t/--type-map {' '.join(names)}: {path} has LAMMPS types 1..{ntypes}; "
                              "name every type, in LAMMPS order")
        unknown = [name for name in names[:ntypes] if name not in type_map]
        if unknown:
            raise OptionError(f"-t/--type-map: {unknown} not in the models' type_map {type_map}. "
                              f"{MODELS_TYPE_MAP_HINT}")
        lookup = np.array([type_map.index(name) for name in names[:ntypes]], dtype=np.int64)
    return Frames(name=str(path), coord=np.asarray(system["coords"], dtype=np.float64),
                  box=np.asarray(system["cells"], dtype=np.float64), atype=lookup[lammps_types],
                  fparam=None, aparam=None, labels={})


def read_system(path: str, type_map: List[str], numb_fparam: int, numb_aparam: int) -> Frames:
    data = DeepmdSystem.load(path, type_map, numb_fparam=numb_fparam, numb_aparam=numb_aparam,
                             type_map_hint=MODELS_TYPE_MAP_HINT)
    labels = {name: getattr(data, name) for name in ("energy", "force", "virial") if getattr(data, name) is not None}
    return Frames(name=data.path, coord=data.coord, box=data.box, atype=data.atype, fparam=data.fparam,
                  aparam=data.aparam, labels=labels)


def find_frames(system: str, type_map: List[str], names: Optional[List[str]], numb_fparam: int,
                numb_aparam: int) -> List[Frames]:
    """The LAMMPS dump ``system``, or the deepmd/npy and deepmd/hdf5 systems found under it."""
    path = Path(system)
    if path.is_file() and path.suffix not in H5_SUFFIXES:
        if not is_lammps_dump(path):
            raise DataError(f"{path}: neither a LAMMPS dump (its first line is not 'ITEM: TIMESTEP') nor an HDF5 "
                            "file; point -s/--system at a dump, a deepmd/npy system folder or a .h5 file")
        return [read_lammps_dump(path, type_map, names, numb_fparam, numb_aparam)]
    if names is not None:
        raise OptionError("-t/--type-map names the types of a LAMMPS dump; deepmd/npy and hdf5 systems name "
                          "theirs in type_map.raw. Leave the option out")
    return [read_system(found, type_map, numb_fparam, numb_aparam)
            for found in expand_systems(system, option="-s/--system")]


def _labels(frames: Frames) -> Dict[str, np.ndarray]:
    """Labels for --real_error: energy and force required; without virials the virial columns are nan."""
    missing = [name for name in ("energy", "force") if name not in frames.labels]
    if missing:
        raise DataError(f"{frames.name}: no {' or '.join(name + '.npy' for name in missing)}; --real_error "
                        "compares with labels, so use labelled data or leave --real_error out")
    labels = dict(frames.labels)
    if "virial" not in labels:
        log.warning("%s: no virial.npy; the virial columns of the real error are nan", frames.name)
        labels["virial"] = np.full((frames.coord.shape[0], 9), np.nan)
    return labels


def make_model_devi(models: List[str], system: str, output: str, frequency: int = 1, real_error: bool = False,
                    atomic: bool = False, relative: Optional[float] = None, relative_v: Optional[float] = None,
                    type_map: Optional[List[str]] = None) -> List[np.ndarray]:
    """Append one block per system to ``output``; returns each block (nf x 8, or nf x (8 + N) with
    ``atomic``; first column the step = frame index x ``frequency``)."""
    _check_options(models, frequency, real_error, relative, relative_v)
    dps = load_models(models)
    model_types = dps[0].get_type_map()
    systems = find_frames(system, model_types, type_map, dps[0].get_dim_fparam(), dps[0].get_dim_aparam())
    blocks = []
    for frames in systems:
        nf = frames.coord.shape[0]
        box = None if frames.box is None else frames.box.reshape(nf, 9)
        results = [dp.eval(frames.coord, box, frames.atype, fparam=frames.fparam, aparam=frames.aparam) for dp in dps]
        energies = np.stack([r[0].reshape(nf) for r in results])
        forces = np.stack([r[1] for r in results])
        virials = np.stack([r[2] for r in results])
        labels = _labels(frames) if real_error else None
        columns = model_devi_columns(energies, forces, virials, labels, atomic, relative, relative_v)
        steps = np.arange(nf, dtype=np.int64) * frequency
        append_model_devi_out(Path(output), steps, columns, frames.name, atomic)
        log.info("%s: %d frames, max_devi_f up to %.3e -> %s", frames.name, nf, columns[:, 3].max(), output)
        blocks.append(np.concatenate([steps[:, None].astype(np.float64), columns], axis=1))
    return blocks
