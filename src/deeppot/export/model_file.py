"""The frozen model file (``.pth``): a TorchScript archive loadable from C++ (libtorch) without Python.

Inside:
- the scripted :class:`FrozenEnergyModel`, whose ``forward`` is the MD-engine entry point
  ``forward_lower(extended_coord, extended_atype, nlist, mapping, fparam, aparam, do_atomic_virial)``
  and which exports ``get_rcut``, ``get_type_map``, ``get_sel``, ``get_ntypes``, ``get_dim_fparam``,
  ``get_dim_aparam``, ``model_output_type`` (["energy"], or ["dipole"] / ["polarizability"] for a tensor model,
  whose forward returns its atomic and global tensor instead of energy and forces);
- extra file ``deeppot/model.json``: format version, type_map, rcut, sel, min_nbor_dist, model_output_type, the model
  section of input.json and DeePMD-kit's serialized model dict with every array replaced by the name
  of an entry in
- extra file ``deeppot/variables.npz``: those arrays (numpy .npz, no pickle).
- with mixed precision, ``mixed_precision`` ({output_prec, compute_prec}) in model.json: the networks of the
  rebuilt model compute as they were trained (:mod:`deeppot.nn.precision`); the scripted module has the casts.
- with a modifier (DPLR), ``modifier_type`` and the modifier's dict (:mod:`deeppot.modifier`, its dipole model's
  arrays in the same .npz) in model.json, for Python evaluation; the scripted module is the model alone;
- optionally, extra file ``deeppot/model.pt2``: the entry point compiled by AOTInductor
  (:mod:`deeppot.export.aoti`, which states the C++ contract).
Python reads the dict back and rebuilds the eager model; C++ runs the scripted module.
"""

import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from deeppot import __version__
from deeppot.errors import ModelFileError
from deeppot.model import deserialize_model
from deeppot.model.energy_model import EnergyModel
from deeppot.nn.precision import enable_mixed_precision, mixed_precision_of
from deeppot.train.checkpoint import FROZEN_METADATA_ENTRY, archive_kind, atomic_write

FORMAT_VERSION = 3  # the newest this reader knows; 3 = a modifier (older readers would drop it silently)
COMPRESSED_FORMAT_VERSION = 2  # a compressed descriptor (tables in the model dict)
UNCOMPRESSED_FORMAT_VERSION = 1  # uncompressed files keep version 1, so older deeppot still reads them
JSON_ENTRY = FROZEN_METADATA_ENTRY
ARRAYS_ENTRY = "deeppot/variables.npz"


class FrozenEnergyModel(nn.Module):
    """TorchScript face of a model (energy, dipole or polar) for MD engines: its ``forward_lower``."""

    def __init__(self, model: EnergyModel):
        super().__init__()
        self.model = model
        self.rcut = float(model.rcut)
        self.type_map: List[str] = list(model.type_map)
        self.sel: List[int] = list(model.sel)
        self.dim_fparam = int(model.fitting.numb_fparam)
        self.dim_aparam = int(model.fitting.numb_aparam)
        self.output_type: List[str] = [str(model.output_type)]

    def forward(
        self,
        extended_coord: torch.Tensor,
        extended_atype: torch.Tensor,
        nlist: torch.Tensor,
        mapping: Optional[torch.Tensor] = None,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
        do_atomic_virial: bool = False,
    ) -> Dict[str, torch.Tensor]:
        return self.model.forward_lower(extended_coord, extended_atype, nlist, mapping, fparam, aparam, do_atomic_virial)

    @torch.jit.export
    def get_rcut(self) -> float:
        return self.rcut

    @torch.jit.export
    def get_type_map(self) -> List[str]:
        return self.type_map

    @torch.jit.export
    def get_sel(self) -> List[int]:
        return self.sel

    @torch.jit.export
    def get_ntypes(self) -> int:
        return len(self.type_map)

    @torch.jit.export
    def get_dim_fparam(self) -> int:
        return self.dim_fparam

    @torch.jit.export
    def get_dim_aparam(self) -> int:
        return self.dim_aparam

    @torch.jit.export
    def model_output_type(self) -> List[str]:
        """What ``forward`` predicts, as DeePMD-kit's frozen models: ["energy"], ["dipole"] or ["polarizability"];
        only an energy model returns energy and forces."""
        return self.output_type


def _split_arrays(node, arrays: Dict[str, np.ndarray]):
    """Replace every numpy array in a nested dict/list by a reference string; collect the arrays."""
    if isinstance(node, np.ndarray):
        name = f"array_{len(arrays):04d}"
        arrays[name] = node
        return {"@ndarray": name}
    if isinstance(node, dict):
        return {k: _split_arrays(v, arrays) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_split_arrays(v, arrays) for v in node]
    return node


def _join_arrays(node, arrays):
    if isinstance(node, dict):
        if set(node) == {"@ndarray"}:
            return np.asarray(arrays[node["@ndarray"]])
        return {k: _join_arrays(v, arrays) for k, v in node.items()}
    if isinstance(node, list):
        return [_join_arrays(v, arrays) for v in node]
    return node


def save_model_file(model: EnergyModel, model_params: Dict, path: Path, aoti: bool = False,
                    modifier: Optional[Dict] = None) -> None:
    """Script ``model`` and write it with its serialized dict to ``path`` (atomically). With ``aoti``, also
    compile the MD-engine entry point with AOTInductor (tens of seconds) and embed the ``.pt2`` package
    (:mod:`deeppot.export.aoti`, extra file ``deeppot/model.pt2``). ``modifier``: a serialized modifier
    (:mod:`deeppot.modifier`, e.g. DPLR's with its dipole model) that Python evaluation adds to the model's
    output; the scripted module (what MD engines run) stays the model alone."""
    arrays: Dict[str, np.ndarray] = {}
    serialized = model.serialize()
    compressed = model.descriptor.compressed
    meta = {
        "format": "deeppot-frozen-model",
        "format_version": FORMAT_VERSION if modifier is not None
        else COMPRESSED_FORMAT_VERSION if compressed else UNCOMPRESSED_FORMAT_VERSION,
        "software": "deeppot",
        "version": __version__,
        "type_map": list(model.type_map),
        "rcut": float(model.rcut),
        "sel": list(model.sel),
        "min_nbor_dist": float(model.min_nbor_dist),
        "model_output_type": [model.output_type],
        "model_def_script": model_params,
        "model": _split_arrays(serialized, arrays),
    }
    if mixed_precision_of(model) is not None:
        meta["mixed_precision"] = mixed_precision_of(model)
    if modifier is not None:
        meta["modifier_type"] = modifier["type"]  # read by the LAMMPS plugin, which does not apply it
        meta["modifier"] = _split_arrays(modifier, arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    extra = {JSON_ENTRY: json.dumps(meta), ARRAYS_ENTRY: buffer.getvalue()}
    if aoti:
        from deeppot.export.aoti import AOTI_ENTRY, compile_package

        extra[AOTI_ENTRY] = compile_package(model.eval())
    archive = io.BytesIO()  # saved in memory, so the archive's inner folder is not named after a temp file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in torch 2.13
        torch.jit.save(torch.jit.script(FrozenEnergyModel(model.eval())), archive, _extra_files=extra)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(archive.getvalue()))


def read_model_metadata(path: Path) -> Dict:
    """The metadata of a frozen file, with the serialized model dict (arrays restored).

    Read straight from the archive (a zip): the TorchScript module itself is for C++ and is not loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found; freeze a checkpoint with 'deeppot freeze -o {path.name}'")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {name.split("/extra/", 1)[1]: name for name in archive.namelist() if "/extra/" in name}
            if JSON_ENTRY not in entries and archive_kind(path) == "checkpoint":
                raise ModelFileError(f"{path}: a training checkpoint, not a frozen model; freeze it with "
                                     f"'deeppot freeze -c {path} -o model.pth'")
            if JSON_ENTRY not in entries:
                raise ModelFileError(
                    f"{path}: a TorchScript file without deeppot metadata; make one with 'deeppot freeze'"
                )
            meta = json.loads(archive.read(entries[JSON_ENTRY]))
            arrays_bytes = archive.read(entries[ARRAYS_ENTRY])
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a frozen deeppot model ({exc.__class__.__name__}); "
                             "make one with 'deeppot freeze'") from None
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: written by a newer deeppot (format {meta['format_version']}); upgrade deeppot")
    with np.load(io.BytesIO(arrays_bytes), allow_pickle=False) as arrays:
        for name in ("model", "modifier"):
            if name in meta:
                meta[name] = _join_arrays(meta[name], {k: arrays[k] for k in arrays.files})
    return meta


def load_model(path: Path) -> Tuple[EnergyModel, Dict]:
    """The eager model (its class picked by the fitting type) rebuilt from a frozen file, and the file's metadata."""
    meta = read_model_metadata(path)
    model = deserialize_model(meta["model"])
    enable_mixed_precision(model, meta.get("mixed_precision"))
    model.min_nbor_dist = meta.get("min_nbor_dist", -1.0)
    return model.eval(), meta
