"""Write DeePMD-kit mixed-type data (``real_atom_types.npy``, spec section 4) from ../shared/data/nopbc_cho.

The three C/H/O molecules (C1H4O2: 7 atoms, C3H3O4: 10, C4H3O1: 8; no periodic boundaries) become mixed-type
systems with dpdata's ``deepmd/npy/mixed`` writer: atom counts padded with virtual atoms (type -1) to multiples
of ``--pad``, so that frames of different compositions share one system (with the default 8: C1H4O2 and C4H3O1
in ``8/``, C3H3O4 in ``16/``). The last ``--valid-fraction`` of each molecule's frames go to ``data/valid``, the
rest to ``data/train``.

    python make_data.py [--out data] [--pad 8] [--valid-fraction 0.1]
"""

import argparse
import math
from pathlib import Path

import dpdata

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[1].parent / "shared" / "data" / "nopbc_cho"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "data", help="output folder (default: data here)")
    parser.add_argument("--pad", type=int, default=8, help="pad atom counts to multiples of this (default 8)")
    parser.add_argument("--valid-fraction", type=float, default=0.1, help="share of frames for validation")
    args = parser.parse_args()
    train, valid = dpdata.MultiSystems(), dpdata.MultiSystems()
    for folder in sorted(p for p in SOURCE.iterdir() if (p / "type.raw").is_file()):
        system = dpdata.LabeledSystem(str(folder), fmt="deepmd/npy")
        nvalid = max(1, math.floor(args.valid_fraction * len(system)))
        train.append(system.sub_system(range(len(system) - nvalid)))
        valid.append(system.sub_system(range(len(system) - nvalid, len(system))))
    for name, systems in (("train", train), ("valid", valid)):
        systems.to("deepmd/npy/mixed", str(args.out / name), atom_numb_pad=args.pad)
        print(f"{args.out / name}: {systems.get_nframes()} frames in", ", ".join(
            p.name for p in sorted((args.out / name).iterdir())))


if __name__ == "__main__":
    main()
