"""``deeppot freeze [-c CHECKPOINT] [-o model.pth]``."""

import argparse
import logging

from deeppot.export.freeze import freeze

log = logging.getLogger("deeppot")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "freeze",
        help="write a trained checkpoint as one self-contained model file",
        description="Freeze a checkpoint into a TorchScript .pth file that carries the type_map, rcut and "
        "the serialized model; it loads in Python (DeepPot, ASE) and in C++ (libtorch) without the config.",
    )
    parser.add_argument("-c", "--checkpoint-folder", "--checkpoint", dest="checkpoint", default=".",
                        help="a checkpoint file, or a training folder whose 'checkpoint' file names the latest "
                        "(default: .)")
    parser.add_argument("-o", "--output", default="frozen_model.pth",
                        help="output file; '.pth' is appended if missing (default frozen_model.pth)")
    parser.add_argument("--aoti", action="store_true",
                        help="also embed an AOTInductor-compiled entry point, which LAMMPS then runs instead of "
                        "TorchScript (1.5-4 min to compile; tied to this CPU and torch version)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    path = freeze(args.checkpoint, args.output, aoti=args.aoti)
    log.info("frozen model written to %s", path)
