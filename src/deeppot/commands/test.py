"""``deeppot test -m model.pth -s system -n 100 [-d detail] [--plot parity.png]``."""

import argparse
import logging
from pathlib import Path

from deeppot.errors import DataError
from deeppot.infer.model_test import run_test

log = logging.getLogger("deeppot")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "test",
        help="errors of a frozen model on labeled data, as 'dp test'",
        description="Print energy, force and virial MAE/RMSE of a frozen energy model (or the dipole / "
        "polarizability RMSE of a tensor model) on data systems and optionally write dp-test-style detail files.",
    )
    parser.add_argument("-m", "--model", default="frozen_model.pth", help="frozen model file (default frozen_model.pth)")
    parser.add_argument("-s", "--system", default=".", help="a data system, or a folder searched recursively")
    parser.add_argument("-n", "--numb-test", type=int, default=0, help="frames tested per system (0 = all)")
    parser.add_argument("-r", "--rand-seed", type=int, default=None, help="seed of --shuffle-test")
    parser.add_argument("--shuffle-test", action="store_true", help="test frames in random order")
    parser.add_argument("-d", "--detail-file", default=None,
                        help="prefix P of detail files P.e.out, P.e_peratom.out, P.f.out, P.v.out, P.v_peratom.out "
                        "(tensor models: P.dipole.out or P.polarizability.out)")
    parser.add_argument("-a", "--atomic", action="store_true",
                        help="energy models: also write atomic energies (P.ae.out); tensor models: test the atomic "
                        "tensors (atomic_*.npy labels) instead of the global one")
    parser.add_argument("--plot", metavar="FIGURE", default=None,
                        help="also write a parity figure (.png, .pdf, .svg, ...): predicted against reference energy "
                        "per atom, force components and virial per atom (tensor models: the tensor components), "
                        "the RMSE of all tested systems in each legend")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    parity = None
    if args.plot:
        from deeppot.report.figures import check_figure_path

        check_figure_path(Path(args.plot), "--plot")
        parity = {}
    run_test(args.model, args.system, args.numb_test, args.rand_seed, args.shuffle_test, args.detail_file,
             args.atomic, parity)
    if args.plot:
        from deeppot.report.parity_plot import plot_parity

        if not parity:
            raise DataError(f"--plot {args.plot}: the tested systems hold no labels this model predicts; no figure "
                            "written")
        plot_parity(parity, Path(args.plot), f"deeppot test: {Path(args.model).name} on {Path(args.system).name}")
        log.info("parity figure written to %s", args.plot)
