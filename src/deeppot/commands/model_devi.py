"""``deeppot model-devi -m m1.pth m2.pth m3.pth -s system -o model_devi.out [-f FREQ] [--atomic] ...``."""

import argparse

from deeppot.infer.model_devi_run import make_model_devi


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "model-devi",
        help="model deviation of several models on data or a LAMMPS dump, as 'dp model-devi'",
        description="Evaluate several frozen models on the frames of data systems (deepmd/npy, deepmd/hdf5) or "
        "of a LAMMPS dump and append, per system, DeePMD-kit's model_devi.out columns: step max_devi_v min_devi_v "
        "avg_devi_v max_devi_f min_devi_f avg_devi_f devi_e [atm_devi_f(N)]. Virial and energy deviations are per "
        "atom (eV), force deviations in eV/Angstrom.",
    )
    parser.add_argument("-m", "--models", nargs="+", default=[f"graph.{i:03d}.pth" for i in range(4)],
                        help="frozen models (default graph.000.pth ... graph.003.pth)")
    parser.add_argument("-s", "--system", default=".",
                        help="a data system, a folder searched recursively for systems, or a LAMMPS dump file")
    parser.add_argument("-o", "--output", default="model_devi.out", help="file the blocks are appended to")
    parser.add_argument("-f", "--frequency", type=int, default=1,
                        help="MD steps between frames: the step column is the frame index times this (default 1)")
    parser.add_argument("-t", "--type-map", nargs="+", default=None, metavar="NAME",
                        help="element of each LAMMPS type of a dump, in order (default: the models' type_map)")
    parser.add_argument("--real_error", "--real-error", dest="real_error", action="store_true",
                        help="RMS error of the models against the labels instead of their spread")
    parser.add_argument("--atomic", action="store_true", help="also write the force deviation of every atom")
    parser.add_argument("--relative", type=float, default=None, metavar="LEVEL",
                        help="force deviation of atom i divided by |mean F_i| + LEVEL (eV/Angstrom)")
    parser.add_argument("--relative_v", "--relative-v", dest="relative_v", type=float, default=None, metavar="LEVEL",
                        help="virial deviation divided by |mean virial per atom| + LEVEL (eV)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    make_model_devi(args.models, args.system, args.output, args.frequency, args.real_error, args.atomic,
                    args.relative, args.relative_v, args.type_map)
