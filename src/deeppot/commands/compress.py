"""``deeppot compress -i model.pth -o model-compressed.pth [-s STEP] [-e EXTRAPOLATE] [-f FREQ] [-t input.json]``."""

import argparse
import logging

from deeppot.export.compress import compress_file

log = logging.getLogger("deeppot")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "compress",
        help="tabulate the embedding nets of a frozen model (faster MD, same results to ~1e-7)",
        description="Replace each embedding net of a frozen model by piecewise fifth-order polynomials, "
        "evaluated fused with the descriptor's contraction, as 'dp compress'. The output is a frozen model "
        "like the input and goes wherever one goes (test, DeepPot, ASE, dpdata, LAMMPS).",
    )
    parser.add_argument("-i", "--input", default="frozen_model.pth", help="frozen model (default frozen_model.pth)")
    parser.add_argument("-o", "--output", default="frozen_model_compressed.pth",
                        help="compressed model file (default frozen_model_compressed.pth)")
    parser.add_argument("-s", "--step", type=float, default=0.01,
                        help="stride of the first table, in units of the normalised input; the second table "
                        "(beyond the training data) uses 10x (default 0.01)")
    parser.add_argument("-e", "--extrapolate", type=float, default=5.0,
                        help="the second table reaches extrapolate x the first table's upper bound (default 5)")
    parser.add_argument("-f", "--frequency", type=int, default=-1,
                        help="every this many evaluations, warn if inputs leave the tables; -1 never (default)")
    parser.add_argument("-t", "--training-script", default=None,
                        help="the training input.json, to compute min_nbor_dist from its training data when the "
                        "model does not record it")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    path = compress_file(args.input, args.output, args.step, args.extrapolate, args.frequency, args.training_script)
    log.info("compressed model written to %s", path)
