"""``deeppot plot lcurve.out [-o lcurve.png]``: the learning curves of a finished or running training."""

import argparse
import logging
from pathlib import Path

log = logging.getLogger("deeppot")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "plot",
        help="plot the learning curves of lcurve.out (also while training runs)",
        description="Plot lcurve.out: one log-log panel per quantity (energy, force, virial or tensor RMSE, "
        "training and validation) and the learning rate in its own panel. Works on a file still being written.",
    )
    parser.add_argument("LCURVE", nargs="?", default="lcurve.out", help="learning-curve file (default lcurve.out)")
    parser.add_argument("-o", "--output", default="lcurve.png",
                        help="figure file; the format follows the suffix: .png, .pdf, .svg, ... (default lcurve.png)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    from deeppot.report.figures import check_figure_path
    from deeppot.report.lcurve_plot import plot_lcurve, read_lcurve

    output = check_figure_path(Path(args.output), "-o/--output")
    lcurve = read_lcurve(Path(args.LCURVE))
    plot_lcurve(lcurve, output)
    log.info("learning curves of %s (%d rows, last step %d) written to %s", args.LCURVE, len(lcurve.steps),
             int(lcurve.steps[-1]), output)
