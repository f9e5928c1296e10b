"""Speed of the frozen model's MD-engine entry point in its three forms, on a water model of each descriptor.

The water model of examples/water/input.json (se_e2_a sel [46, 92], rcut 6, neuron [25, 50, 100], fitting
[240, 240, 240], float64), or with --descriptor another descriptor's water example
(examples/water/<descriptor>/input.json, as bench_water.py), random weights with the statistics of
../shared/data/water. Freezing with the AOTInductor package checks the compiled package against eager
forward_lower on three systems of other sizes (it raises otherwise), so a run is also the check that the
descriptor goes through ``freeze --aoti`` (and, with --compressed, ``compress`` with its package). Inputs as LAMMPS gives
them: ghost atoms, a full neighbor list out to rcut + skin (1 Angstrom), unsorted. Cases:
- eager: ``EnergyModel.forward_lower`` in Python;
- torchscript: the frozen ``.pth`` loaded with ``torch.jit.load`` (what libtorch runs);
- aoti: the AOTInductor package (``deeppot.export.aoti``) loaded with ``torch._inductor.aoti_load_package``.
Each call gives energy, forces and the per-atom virial. TorchScript and the package are timed in separate
fresh processes, each interleaved with eager (the common baseline) so that machine load hits both alike.
Prints microseconds per atom-step (medians over --repeats calls), the largest difference to eager, the
package's compile time and size, the frozen file's size with and without it.

    OMP_NUM_THREADS=1 python benchmarks/bench_frozen_formats.py [--descriptor se_e2_a] [--repeats 7] [--replicas 1 4]
                                                                [--threads 1] [--compressed]
"""

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_water import DESCRIPTORS, replicated_water, water_config

SKIN = 1.0  # Angstrom, as LAMMPS's "neighbor 1.0 bin"
WARMUP = 4  # calls before timing
OUTPUTS = ("E", "Ei", "F", "W", "Wi")  # energy, atom energy, force, virial, atomic virial


def water_model(descriptor: str):
    from deeppot.config import validate_input
    from deeppot.train.trainer import Trainer

    trainer = Trainer(validate_input(water_config(descriptor, 0)), output_dir=Path(tempfile.mkdtemp()))
    return trainer.model.eval(), trainer.model_params()


def engine_inputs(replicas: int, rcut: float, seed: int = 0):
    """(extended_coord 1 x nall x 3, extended_atype 1 x nall, nlist 1 x nloc x ncand) of the water frame
    replicated replicas^3 times: ghosts are the periodic images that some pair within rcut + SKIN needs,
    each row lists its neighbors in random order, -1 padded."""
    import torch

    from deeppot.geometry.neighbors import pair_list

    coord, atype, box = replicated_water(replicas)
    nloc = len(atype)
    i, j, shift, _ = pair_list(coord, box, rcut + SKIN)
    shift = np.rint(shift).astype(np.int64)
    image = (shift[:, 0] + 8) * 289 + (shift[:, 1] + 8) * 17 + (shift[:, 2] + 8)  # |shift| <= 8
    home = image == 8 * 289 + 8 * 17 + 8
    keys, ghost_of_pair = np.unique(j[~home] * 4913 + image[~home], return_inverse=True)
    ghost_atom, ghost_image = keys // 4913, keys % 4913
    ghost_shift = np.stack([ghost_image // 289 - 8, ghost_image // 17 % 17 - 8, ghost_image % 17 - 8], axis=1)
    neighbor = j.copy()
    neighbor[~home] = nloc + ghost_of_pair
    ext_coord = np.concatenate([coord, coord[ghost_atom] + ghost_shift @ box])
    ext_atype = np.concatenate([atype, atype[ghost_atom]])
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(i)), i))  # rows by center, neighbors shuffled within
    i, neighbor = i[order], neighbor[order]
    counts = np.bincount(i, minlength=nloc)
    column = np.arange(len(i)) - np.repeat(np.cumsum(counts) - counts, counts)
    nlist = np.full((nloc, counts.max()), -1, dtype=np.int64)
    nlist[i, column] = neighbor
    return torch.from_numpy(ext_coord)[None], torch.from_numpy(ext_atype)[None], torch.from_numpy(nlist)[None]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--descriptor", default="se_e2_a", choices=DESCRIPTORS)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compressed", action="store_true", help="also the compressed model")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--form", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.worker:
        time_files(Path(args.worker), args.form, args.replicas, args.repeats)
        return
    print(f"threads {args.threads}, torch {torch.__version__}, load average at start {os.getloadavg()}")
    print(f"descriptor {args.descriptor}")
    model, params = water_model(args.descriptor)
    variants = {"frozen": model}
    if args.compressed:
        from deeppot.export.compress import compress_model
        from deeppot.geometry.neighbors import pair_list

        frame = engine_inputs(1, model.rcut)[0][0, :192].numpy()
        min_dist = float(pair_list(frame, None, model.rcut)[3].min())
        variants["compressed"] = compress_model(copy.deepcopy(model), min_dist)
    for variant, net in variants.items():
        print(f"\n=== {variant} model", flush=True)
        folder = Path(tempfile.mkdtemp())
        freeze_both(net, params, folder)
        # timed in fresh processes that only load the files, as an MD engine does: TorchScript and the
        # package each in its own (with both loaded, TorchScript ran several times slower), eager in both
        for form in ("torchscript", "aoti"):
            command = [sys.executable, __file__, "--worker", str(folder), "--form", form, "--threads",
                       str(args.threads), "--repeats", str(args.repeats), "--replicas", *map(str, args.replicas)]
            subprocess.run(command, check=True)


def freeze_both(model, params, folder: Path) -> None:
    """folder/plain.pth (TorchScript only) and folder/aoti.pth (with the package); print compile figures."""
    from deeppot.export import aoti
    from deeppot.export.model_file import save_model_file

    save_model_file(model, params, folder / "plain.pth")
    start = time.perf_counter()
    save_model_file(model, params, folder / "aoti.pth", aoti=True)
    compile_s = time.perf_counter() - start
    package = aoti.read_package(folder / "aoti.pth")
    print(f"freeze with the AOTInductor package: {compile_s:.0f} s (export, compile, self-check); package "
          f"{len(package) / 1e6:.1f} MB; frozen file {(folder / 'plain.pth').stat().st_size / 1e6:.1f} MB without, "
          f"{(folder / 'aoti.pth').stat().st_size / 1e6:.1f} MB with it", flush=True)


def time_files(folder: Path, form: str, replicas_list, repeats: int) -> None:
    """Load the frozen files of ``folder`` as eager model and as ``form`` and time both on each system."""
    import torch

    from deeppot.export import aoti
    from deeppot.export.model_file import load_model

    model, _ = load_model(folder / "plain.pth")
    forms = {"eager": lambda x, t, nl: aoti.eager_outputs(model, (x, t, nl))}
    start = time.perf_counter()
    if form == "aoti":
        runner = aoti.load_frozen_package(folder / "aoti.pth")
        forms["aoti"] = lambda x, t, nl: tuple(runner(x, t, nl))
    else:
        scripted = torch.jit.load(str(folder / "plain.pth"))
        forms["torchscript"] = lambda x, t, nl: tuple(
            scripted(x, t, nl, None, None, None, True)[name] for name in aoti.OUTPUT_NAMES)
    print(f"--- {form} loaded in {time.perf_counter() - start:.2f} s")
    for replicas in replicas_list:
        time_forms(forms, engine_inputs(replicas, model.rcut), repeats)


def time_forms(forms, inputs, repeats):
    """Median microseconds per atom-step of each form, interleaved; max difference to the first form."""
    nloc = inputs[2].shape[1]
    print(f"{nloc} atoms, nall {inputs[0].shape[1]}, neighbor list width {inputs[2].shape[2]}")
    names = list(forms)
    reference = forms[names[0]](*inputs)
    times = {name: [] for name in names}
    worst = {name: "" for name in names}
    for name in names:  # agreement, and warm-up (TorchScript's profiling executor optimises after a few calls)
        diffs = [float((want - have).abs().max()) for want, have in zip(reference, forms[name](*inputs))]
        worst[name] = " ".join(f"{output} {diff:.0e}" for output, diff in zip(OUTPUTS, diffs))
        for _ in range(WARMUP if nloc < 1000 else 1):
            forms[name](*inputs)
    for _ in range(repeats if nloc < 1000 else max(3, repeats // 2)):
        for name in names:
            start = time.perf_counter()
            forms[name](*inputs)
            times[name].append(time.perf_counter() - start)
    for name in names:
        median = statistics.median(times[name])
        print(f"  {name:12s} {median * 1e3:9.1f} ms  {median * 1e6 / nloc:7.1f} us/atom-step  "
              f"(min {min(times[name]) * 1e6 / nloc:.1f}); max |diff| to {names[0]}: {worst[name]}")
    print(f"  load average now {os.getloadavg()}")


if __name__ == "__main__":
    main()
