"""``deeppot neighbor-stat -s SYSTEMS -r RCUT [-t TYPE ...]``, as ``dp neighbor-stat``."""

import argparse
import dataclasses
import logging
from typing import List, Optional, Tuple

import numpy as np

from deeppot.data import DeepmdSystem, expand_systems
from deeppot.geometry.neighbor_stat import neighbor_stat

log = logging.getLogger("deeppot")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "neighbor-stat",
        help="smallest interatomic distance and largest neighbor count per type, as 'dp neighbor-stat'",
        description="Print min_nbor_dist (Angstrom), the smallest interatomic distance, and max_nbor_size, the "
        "largest number of neighbors of each type within rcut of any atom, over every frame of the data "
        "systems. Use max_nbor_size to choose the descriptor's sel.",
    )
    parser.add_argument("-s", "--system", default=".",
                        help="a data system, or a folder (or .h5 file) searched recursively (default: .)")
    parser.add_argument("-r", "--rcut", type=float, required=True, help="cutoff radius, Angstrom")
    parser.add_argument("-t", "--type-map", nargs="+", default=None,
                        help="element names, in model type order (default: the systems' type_map.raw, "
                        "unioned in order of first appearance)")
    parser.set_defaults(func=run)
    return parser


def load_systems(system: str, type_map: Optional[List[str]]) -> Tuple[List[DeepmdSystem], List[str]]:
    """Every system found under ``system``, with types indexing the returned type map.

    Without ``type_map``, the systems' element names are unioned in order of first appearance
    (systems in search order) and each system's types are remapped by name onto that union.
    """
    paths = expand_systems(system, option="-s/--system")
    if type_map:
        hint = "Add them to -t/--type-map, or leave -t out to use the systems' own elements."
        return [DeepmdSystem.load(p, type_map, type_map_hint=hint) for p in paths], list(type_map)
    systems = [DeepmdSystem.load(p, None) for p in paths]
    names: List[str] = []
    for s in systems:
        names.extend(n for n in s.type_names if n not in names)
    remapped = [
        dataclasses.replace(s, atype=np.array([names.index(n) for n in s.type_names] + [-1], dtype=np.int64)[s.atype],
                            type_names=names)
        for s in systems
    ]
    return remapped, names


def run(args: argparse.Namespace) -> None:
    systems, type_map = load_systems(args.system, args.type_map)
    log.info("neighbor statistics of %d systems, %d frames, rcut %g A, type_map %s",
             len(systems), sum(s.nframes for s in systems), args.rcut, type_map)
    max_nbor, min_dist = neighbor_stat(systems, args.rcut, len(type_map))
    print(f"min_nbor_dist: {min_dist:f}")
    print(f"max_nbor_size: {max_nbor}")
