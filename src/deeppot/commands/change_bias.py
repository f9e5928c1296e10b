"""``deeppot change-bias MODEL (-s SYSTEMS | -f LIST | -b V1 V2 ...) [-n FRAMES] [-m change|set] [-o OUTPUT]``.

DeePMD-kit's ``dp change-bias`` (spec section 1): the per-type output bias of a training checkpoint or a frozen model
refitted by least squares on data ("change": on label - prediction, added to the bias; "set": on the labels), or set
to given values (energy models). The output is the same kind of file as the input (checkpoint -> checkpoint with
its optimizer and step kept, frozen -> frozen), written atomically. Energy, dipole and polar models; for a dipole
model the bias is stored but, as in DeePMD-kit, not applied to its output.
"""

import argparse
import logging
from pathlib import Path

from deeppot.errors import OptionError

log = logging.getLogger("deeppot")

STAT_BATCH_FRAMES = 8  # frames evaluated together; the fit sees every frame as its own row either way


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "change-bias",
        help="refit a model's per-type output bias on data, as 'dp change-bias'",
        description="Refit the per-type output (energy) bias of a training checkpoint (.pt) or a frozen model (.pth) "
        "by least squares on data systems, or set it to given values; writes the same kind of file.",
    )
    parser.add_argument("INPUT", help="a training checkpoint (model.ckpt-<step>.pt) or a frozen model (deeppot freeze)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("-s", "--system", metavar="DIR", help="data systems: a system folder or a folder searched for "
                        "systems")
    source.add_argument("-f", "--datafile", metavar="FILE", help="a text file naming one system folder per line")
    source.add_argument("-b", "--bias-value", metavar="V", type=float, nargs="+",
                        help="energy bias values (eV), one per type of the model's type_map, in its order")
    parser.add_argument("-n", "--numb-batch", type=int, default=0, metavar="N",
                        help="frames used from each system, its first N (default 0: all)")
    parser.add_argument("-m", "--mode", choices=("change", "set"), default="change",
                        help="change: least squares on label - prediction, added to the bias (default); set: least "
                        "squares on the labels")
    parser.add_argument("-o", "--output", default=None,
                        help="output file (default: INPUT with _updated before its suffix)")
    parser.add_argument("--model-branch", default="", metavar="BRANCH",
                        help="a multi-task model's branch; deeppot models are single-task (Default)")
    parser.set_defaults(func=run)
    return parser


def default_output(path: Path) -> Path:
    """``model.pt`` -> ``model_updated.pt``, ``model.pth`` -> ``model_updated.pth``."""
    return path.with_name(path.stem + "_updated" + path.suffix)


def run(args: argparse.Namespace) -> None:
    from deeppot.train.finetune import check_model_branch, load_model_file, refit_output_bias, set_output_bias

    if check_model_branch(args.model_branch):
        raise OptionError("--model-branch RANDOM re-initialises a fitting net when fine-tuning; change-bias keeps "
                          "the model: leave the option out")
    if args.numb_batch < 0:
        raise OptionError(f"-n/--numb-batch {args.numb_batch}: give the number of frames per system, 0 for all")
    path = Path(args.INPUT)
    output = Path(args.output) if args.output else default_output(path)
    model, meta = load_model_file(path)
    if args.bias_value is not None:
        set_output_bias(model, args.bias_value)
    else:
        refit_output_bias(model, _sampled_batches(model, meta, args), args.mode)
    _write_like_input(path, model, meta, output)
    log.info("saved the model with its new bias to %s", output)


def _system_paths(args: argparse.Namespace) -> list:
    from deeppot.data import expand_systems
    from deeppot.errors import DataError

    if args.datafile is not None:
        listing = Path(args.datafile)
        if not listing.is_file():
            raise DataError(f"{listing}: file not found; -f takes a text file naming one system folder per line")
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        if not names:
            raise DataError(f"{listing}: names no system; write one system folder per line")
        return expand_systems(names)
    return expand_systems(args.system)


def _sampled_batches(model, meta: dict, args: argparse.Namespace) -> list:
    """Numpy batches of the first ``-n`` frames (all for 0) of each system, with the model's types and labels."""
    import numpy as np

    from deeppot.config import ModelConfig
    from deeppot.data import DeepmdSystem
    from deeppot.data.batching import make_batch
    from deeppot.model import data_label_options
    from deeppot.train.trainer import with_model_types

    labels = data_label_options(ModelConfig.model_validate(meta["model_def_script"]))
    hint = f"The model's type_map is {list(model.type_map)}; give data of these elements only."
    batches = []
    for index, system_path in enumerate(_system_paths(args)):
        system = DeepmdSystem.load(system_path, list(model.type_map), sort_atoms=True,
                                   numb_fparam=model.fitting.numb_fparam, numb_aparam=model.fitting.numb_aparam,
                                   type_map_hint=hint, **labels)
        frames = system.nframes if args.numb_batch == 0 else min(args.numb_batch, system.nframes)
        for start in range(0, frames, STAT_BATCH_FRAMES):
            rows = np.arange(start, min(start + STAT_BATCH_FRAMES, frames))
            batches.append(with_model_types(model, make_batch(system, rows, index)))
    return batches


def _write_like_input(path: Path, model, meta: dict, output: Path) -> None:
    """The model written as the kind of file it came from: a checkpoint keeps everything but the model's tensors
    (optimizer, step, data order); a frozen file is rewritten from the model (its modifier and, when it had one,
    its AOTInductor package, recompiled, kept)."""
    import torch

    from deeppot.export.model_file import save_model_file
    from deeppot.train.checkpoint import archive_kind, atomic_write, load_checkpoint

    if archive_kind(path) == "checkpoint":
        state = load_checkpoint(str(path))
        state["model"] = model.state_dict()
        atomic_write(output, lambda tmp: torch.save(state, tmp))
        return
    save_model_file(model, meta["model_def_script"], output, aoti=_has_aoti(path), modifier=meta.get("modifier"))


def _has_aoti(path: Path) -> bool:
    import zipfile

    from deeppot.export.aoti import AOTI_ENTRY

    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/extra/" + AOTI_ENTRY) for name in archive.namelist())
