"""``deeppot convert-backend INPUT OUTPUT``: models between DeePMD-kit's .dp, deeppot's .pth and checkpoints."""

import argparse
import logging

from deeppot.export.convert_backend import convert_backend

log = logging.getLogger("deeppot")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "convert-backend",
        help="convert a model between DeePMD-kit's .dp file and checkpoints and deeppot's .pth and checkpoints",
        description="Read INPUT and write its model as OUTPUT; the suffixes choose the kinds, as in DeePMD-kit's "
        "'dp convert-backend'. INPUT: .dp (DeePMD-kit's backend-independent file; .yaml/.yml its text form), "
        ".pth (a deeppot frozen model), .pt (a deeppot training checkpoint or a DeePMD-kit PyTorch checkpoint "
        "model.ckpt-N.pt). OUTPUT: .dp or .yaml/.yml (load in DeePMD-kit), .pth (a frozen model for deeppot test, "
        "ASE and LAMMPS) or .pt (a deeppot checkpoint at step 0 for 'deeppot train --init-model'; needs the input's "
        "model section).",
    )
    parser.add_argument("INPUT", help="model file to read (.dp, .yaml, .yml, .pth or .pt)")
    parser.add_argument("OUTPUT", help="model file to write (.dp, .yaml, .yml, .pth or .pt)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    content = convert_backend(args.INPUT, args.OUTPUT)
    model = content["model"]
    model = model["models"][0] if model.get("type") == "zbl" else model  # DP/ZBL: its DP part
    log.info("%s (%s descriptor, %s fitting, type_map %s) written to %s", args.INPUT,
             model["descriptor"].get("type"), model["fitting"].get("type", "ener"), model["type_map"], args.OUTPUT)
