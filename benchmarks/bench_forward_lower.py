"""Cost of the MD-engine entry point on an MD engine's neighbor list (seed's water model, float64, eager).

For the 192-atom water frame and its 4x4x4 replica (12,288 atoms): ghosts and a LAMMPS-like full list
(every atom within rcut + skin, rows in random order, -1 padding at the end) are built once; then it
prints the median over --repeats calls of
- ``format_engine_nlist`` alone (checks + distance sort + type blocks), the part added for any-list input;
- ``forward_lower`` in total (formatting + energy, forces, virial);
- as the baseline beside them, the Python entry point ``forward(coord, atype, box)`` (chunks of 256 atoms, as
  DeepPot and ASE call it) and its ``build_neighbor_list`` (vesin + the same ``select_slots`` rule).

    OMP_NUM_THREADS=1 python benchmarks/bench_forward_lower.py [--repeats 5] [--skin 2.0] [--threads 1]
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from bench_water import replicated_water

from deeppot.config import validate_input
from deeppot.geometry.neighbors import build_neighbor_list, pair_list
from deeppot.model.build import build_model
from deeppot.model.nlist_format import format_engine_nlist

from timing import median_ms

ROOT = Path(__file__).resolve().parents[1]
WATER = ROOT.parent / "shared" / "data" / "water" / "data_3"


def engine_input(coord, atype, box, cutoff, rng):
    """Ghosts (one per periodic image that some local atom sees) and a full list within cutoff, each row
    shuffled, as an MD engine hands them over. Returns extended coord, atype, nlist, mapping."""
    natoms = len(atype)
    i, j, shift, _ = pair_list(coord, box, cutoff)
    shift = np.rint(shift).astype(np.int64)
    reach = int(np.abs(shift).max())
    width = 2 * reach + 1
    image = ((shift[:, 0] + reach) * width + shift[:, 1] + reach) * width + shift[:, 2] + reach
    key = image * natoms + j
    home = (width**3) // 2  # image code of (0, 0, 0)
    ghosts = np.unique(key[image != home])
    ext_index = np.full(width**3 * natoms, -1, dtype=np.int64)
    ext_index[home * natoms + np.arange(natoms)] = np.arange(natoms)
    ext_index[ghosts] = natoms + np.arange(len(ghosts))
    codes = np.stack(np.unravel_index(ghosts // natoms, (width,) * 3), axis=1) - reach
    ext_coord = np.concatenate([coord, coord[ghosts % natoms] + codes @ box])
    mapping = np.concatenate([np.arange(natoms), ghosts % natoms])
    counts = np.bincount(i, minlength=natoms)
    nlist = -np.ones((natoms, counts.max()), dtype=np.int64)
    order = np.lexsort((rng.random(len(i)), i))  # grouped by center, random inside
    column = np.arange(len(i)) - np.repeat(np.cumsum(counts) - counts, counts)
    nlist[i[order], column] = ext_index[key[order]]
    return ext_coord, atype[mapping], nlist, mapping


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skin", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = json.loads((ROOT / "examples" / "water" / "input.json").read_text())
    config["training"]["training_data"]["systems"] = [str(WATER)]
    model_config = validate_input(config).model
    model = build_model(model_config).eval()
    rng = np.random.default_rng(0)
    print(f"threads {args.threads}, skin {args.skin} A; model rcut {model.rcut} sel {model.sel}")
    for replicas in (1, 4):
        coord, atype, box = replicated_water(replicas)
        ext, ext_atype, nlist, mapping = engine_input(coord, atype, box, model.rcut + args.skin, rng)
        inputs = [torch.from_numpy(x)[None] for x in (ext, ext_atype, nlist, mapping)]
        natoms = len(atype)
        fmt = median_ms(lambda: format_engine_nlist(inputs[0], inputs[1], inputs[2], inputs[3], model.rcut,
                                                    model.sel, model.ntypes), args.repeats)
        total = median_ms(lambda: model.forward_lower(*inputs), args.repeats)
        python_list = median_ms(lambda: build_neighbor_list(coord, box, atype, model.rcut, model.sel), args.repeats)
        frame = (torch.from_numpy(coord)[None], torch.from_numpy(atype)[None], torch.from_numpy(box)[None])
        python = median_ms(lambda: model(*frame, chunk_atoms=256), args.repeats)
        print(
            f"{natoms:6d} atoms, nall {len(ext)}, list width {nlist.shape[1]}: "
            f"format_engine_nlist {fmt:8.1f} ms ({fmt / natoms * 1e3:6.1f} us/atom), "
            f"forward_lower {total:8.1f} ms ({total / natoms * 1e3:6.1f} us/atom-step, formatting {fmt / total:5.1%}); "
            f"baseline forward() {python:8.1f} ms ({python / natoms * 1e3:6.1f} us/atom-step), "
            f"its build_neighbor_list {python_list:7.1f} ms"
        )


if __name__ == "__main__":
    main()
