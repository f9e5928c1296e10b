"""Model compression: tabulate the one-input embedding nets of a frozen model (spec section 6).

Works on any descriptor that offers the compression interface:
- ``tabulated_nets()``: the nets to tabulate (each maps N x 1 -> N x M);
- ``table_bounds(min_nbor_dist)``: per net, (lower, upper) of its input over the training data;
- ``enable_compression(tables)``: switch its forward to :class:`deeppot.nn.tabulate.EmbeddingTables`;
- optional ``table_stride_scale`` (DeePMD-kit's se_e3 uses 10 x both strides).
The maths of the tables is in :mod:`deeppot.nn.tabulate`, once.
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
from deeppot.nn.tabulate import tabulate_net
from deeppot.nn.tabulate_kernel import embedding_tables

log = logging.getLogger("deeppot")


def compress_model(
    model: EnergyModel, min_nbor_dist: float, stride: float = 0.01, extrapolate: float = 5.0,
    check_frequency: int = -1,
) -> EnergyModel:
    """Replace the embedding nets of ``model``'s descriptor by tables, in place; returns ``model``.

    Tables cover [lower, upper] with ``stride`` and [upper, extrapolate * upper] with 10 x ``stride``;
    min_nbor_dist (Angstrom) sets upper.
    """
    descriptor = model.descriptor
    if not hasattr(descriptor, "enable_compression"):
        raise ModelFileError(f"descriptor {type(descriptor).__name__} cannot be compressed")
    scale = getattr(descriptor, "table_stride_scale", 1.0)
    nets = descriptor.tabulated_nets()
    bounds = descriptor.table_bounds(min_nbor_dist)
    data, info = [], []
    for k, (net, (lower, upper)) in enumerate(zip(nets, bounds)):
        log.info("tabulating embedding net %d on [%g, %g] (stride %g), then to %g (stride %g)",
                 k, lower, upper, stride * scale, extrapolate * upper, 10 * stride * scale)
        table, table_info = tabulate_net(
            net, lower, upper, extrapolate, stride * scale, 10 * stride * scale, check_frequency, descriptor.dtype
        )
        data.append(table)
        info.append(table_info)
    descriptor.enable_compression(embedding_tables(data, info, descriptor.neuron[-1], descriptor.dtype))
    return model


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
    if meta["model"]["descriptor"].get("compress") is not None:
        raise ModelFileError(f"{input_path}: already compressed; compress the uncompressed frozen model instead")
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
    save_model_file(model, meta["model_def_script"], output_path, aoti=aoti)
    return output_path
