"""``deeppot convert FILES... -o OUT [--fmt F] [--to deepmd/npy|deepmd/hdf5] [--valid-fraction X] [--seed S]``."""

import argparse

from deeppot.data.convert import OUTPUT_FORMATS, convert


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "convert",
        help="turn DFT output (VASP OUTCARs or any labeled format dpdata reads) into training and validation data",
        description="Read labeled frames with dpdata, merge them by composition, split them at random into "
        "OUT/training_data and OUT/validation_data (deepmd/npy folders, or training_data.h5 and "
        "validation_data.h5 with --to deepmd/hdf5), and print how many frames went where. The output "
        "appears complete or not at all.",
    )
    parser.add_argument("FILES", nargs="+", help="input files, e.g. data/*/OUTCAR")
    parser.add_argument("-o", "--output", required=True, help="output folder to create")
    parser.add_argument("--fmt", default="auto",
                        help="dpdata format of the inputs, e.g. vasp/outcar, vasp/xml, abacus/md (default auto: "
                        "from the file name, as dpdata does)")
    parser.add_argument("--to", default="deepmd/npy", choices=list(OUTPUT_FORMATS),
                        help="output format (default deepmd/npy)")
    parser.add_argument("--valid-fraction", type=float, default=0.0,
                        help="fraction of each composition's frames put in validation_data, in [0, 1) "
                        "(default 0: training_data only)")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the split (default: a fresh split)")
    parser.add_argument("--force", action="store_true", help="replace the output folder if it exists")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    result = convert(args.FILES, args.output, fmt=args.fmt, to=args.to, valid_fraction=args.valid_fraction,
                     seed=args.seed, force=args.force)
    print("\n".join(result.summary()))
