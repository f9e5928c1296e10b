"""Model compression: tabulate the one-input embedding nets of a frozen model (spec section 6).

Written once against the descriptor interface (deeppot.descriptor.base), no branch per descriptor type:
- ``compression_refusal()``: None if the descriptor can be tabulated, else why not (said to the user);
- ``enable_compression(min_nbor_dist, table_extrapolate, table_stride_1, table_stride_2, check_frequency)``:
  DeePMD-kit's signature; the descriptor builds its tables (deeppot.nn.tabulate_kernel.tabulate_nets) over the
  input range its training data reach and evaluates them from then on;
- ``compressed``: whether it already is.
"""

import logging
from pathlib import Path
from typing import Optional

from deeppot.config.loader import load_input
from deeppot.data import DeepmdSystem
from deeppot.data.discover import expand_systems
from deeppot.errors import ModelFileError, OptionError
from deeppot.export.aoti import read_package
from deeppot.export.model_file import load_model, save_model_file
from deeppot.geometry.neighbor_stat import neighbor_stat
from deeppot.model.energy_model import EnergyModel

log = logging.getLogger("deeppot")


def compress_model(
    model: EnergyModel, min_nbor_dist: float, stride: float = 0.01, extrapolate: float = 5.0,
    check_frequency: int = -1,
) -> EnergyModel:
    """Replace the embedding nets of ``model``'s descriptor by tables, in place; returns ``model``.

    Tables cover [lower, upper] with ``stride`` and [upper, extrapolate * upper] with 10 x ``stride`` (a
    descriptor may scale both, as se_e3 does); min_nbor_dist (Angstrom) sets upper. A descriptor that cannot
    be tabulated raises ModelFileError saying why.
    """
    check_compressible(model, "the model")
    model.descriptor.enable_compression(min_nbor_dist, extrapolate, stride, 10 * stride, check_frequency)
    return model


def check_compressible(model: EnergyModel, name: str) -> None:
    """ModelFileError, starting with ``name`` (the file), if ``model`` is compressed or cannot be."""
    descriptor = model.descriptor
    if descriptor.compressed:
        raise ModelFileError(f"{name}: already compressed; compress the uncompressed frozen model instead")
    refusal = descriptor.compression_refusal()
    if refusal is not None:
        raise ModelFileError(f"{name}: descriptor {descriptor.type_name} cannot be compressed: {refusal}; "
                             "use the uncompressed model")


def min_nbor_dist_from_script(script: Path, model: EnergyModel) -> float:
    """The smallest interatomic distance (Angstrom) in the training data of ``script`` (an input.json);
    relative system paths are read from the current folder, as ``deeppot train`` reads them."""
    config = load_input(script)
    paths = expand_systems(config.training.training_data.systems)
    systems = [DeepmdSystem.load(p, model.type_map) for p in paths]
    _, min_dist = neighbor_stat(systems, model.rcut, model.ntypes)
    return min_dist


def compress_file(
    input_path: Path, output_path: Path, stride: float = 0.01, extrapolate: float = 5.0, check_frequency: int = -1,
    training_script: Optional[Path] = None,
) -> Path:
    """Read a frozen model, compress it, write the compressed model file (same format, loads everywhere).

    An input that carries an AOTInductor package gets one compiled for the compressed model too.
    """
    if not stride > 0:
        raise OptionError(f"-s/--step {stride}: the table stride must be positive (default 0.01)")
    if not extrapolate > 1:
        raise OptionError(f"-e/--extrapolate {extrapolate}: must be larger than 1 (default 5)")
    model, meta = load_model(Path(input_path))
    check_compressible(model, str(input_path))  # before any work (the training data are not read)
    min_dist = float(meta.get("min_nbor_dist", -1.0))
    if training_script is not None:
        min_dist = min_nbor_dist_from_script(Path(training_script), model)
        log.info("min_nbor_dist %.6f A from the training data of %s", min_dist, training_script)
    if not min_dist > 0:
        raise ModelFileError(
            f"{input_path}: the model does not record min_nbor_dist (the smallest interatomic distance of its "
            "training data); pass the training input with '-t input.json' so that it can be computed"
        )
    compress_model(model, min_dist, stride, extrapolate, check_frequency)
    model.min_nbor_dist = min_dist
    output_path = Path(output_path)
    aoti = read_package(Path(input_path)) is not None
    if aoti:
        log.info("compiling the compressed model's AOTInductor package, as the input has one (about a minute)")
    save_model_file(model, meta["model_def_script"], output_path, aoti=aoti, modifier=meta.get("modifier"))
    return output_path
