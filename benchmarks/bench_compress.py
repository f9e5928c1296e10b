"""Compressed vs frozen water models, per descriptor: accuracy on the water frames, speed and memory of
DeepPot.eval.

Each model is its descriptor's water example (bench_water.water_config: the seed's se_e2_a [25, 50, 100] x 16,
fitting [240, 240, 240]; se_e2_r [5, 10, 20], fitting [120, 120, 120]; se_e3 [2, 4, 8], rcut 5.8, sel
"auto", fitting [240, 240, 240]; float64) with random weights and the statistics of the water data (an
untrained ``deeppot train`` model), frozen and then compressed with ``deeppot compress`` defaults (-s 0.01
-e 5; se_e3 scales both strides by 10, as DeePMD-kit).

Prints, per descriptor,
- the largest energy (eV/atom), force (eV/Angstrom) and virial (eV/atom) difference over --frames frames
  per water system (4 systems, 100 frames each; default all 400 frames, 192 atoms);
- ms per energy+force evaluation (DeepPot.eval) and microseconds per atom-step, median over --repeats, for
  the 192-atom frame and for it replicated 4x4x4 (12,288 atoms; --sizes), frozen and compressed side by side,
  with the peak resident memory of each case (each case in its own process), on --threads threads (default 1);
- for se_e2_a, the table evaluation alone (forward + backward of the fused sum), C++ kernel and pure torch path.

    python benchmarks/bench_compress.py [--descriptors se_e2_a se_e2_r se_e3] [--repeats 7] [--threads 1]
                                        [--sizes 1 4] [--frames 100]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_water import WATER, replicated_water, water_config


def build_models(folder: Path, descriptor: str):
    from deeppot.config import validate_input
    from deeppot.export.compress import compress_file
    from deeppot.export.model_file import save_model_file
    from deeppot.train.trainer import Trainer

    trainer = Trainer(validate_input(water_config(descriptor, 0)), output_dir=folder)
    frozen, compressed = folder / "model.pth", folder / "model-compressed.pth"
    save_model_file(trainer.model, trainer.model_params(), frozen)
    start = time.perf_counter()
    compress_file(frozen, compressed)
    print(f"deeppot compress: {time.perf_counter() - start:.1f} s; files {frozen.stat().st_size / 1e6:.0f} MB "
          f"frozen, {compressed.stat().st_size / 1e6:.0f} MB compressed", flush=True)
    return frozen, compressed


def accuracy(frozen: Path, compressed: Path, frames: int) -> None:
    from deeppot.data import DeepmdSystem
    from deeppot.infer import DeepPot

    worst = np.zeros(3)
    nframes = 0
    reference, candidate = DeepPot(frozen), DeepPot(compressed)
    for index in range(4):
        system = DeepmdSystem.load(str(WATER / f"data_{index}"), ["O", "H"])
        coord, box = system.coord[:frames], system.box[:frames].reshape(-1, 9)
        want = reference.eval(coord, box, system.atype)
        got = candidate.eval(coord, box, system.atype)
        natoms = len(system.atype)
        worst = np.maximum(worst, [np.abs(got[0] - want[0]).max() / natoms, np.abs(got[1] - want[1]).max(),
                                   np.abs(got[2] - want[2]).max() / natoms])
        nframes += coord.shape[0]
    print(f"accuracy over {nframes} water frames: max |dE| {worst[0]:.2e} eV/atom (limit 1e-6), max |dF| "
          f"{worst[1]:.2e} eV/A (limit 1e-5), max |dV| {worst[2]:.2e} eV/atom", flush=True)


def case_infer(model_file: str, replicas: int, repeats: int) -> dict:
    from deeppot.infer import DeepPot

    coord, atype, box = replicated_water(replicas)
    coord, cell = coord[None], box.reshape(1, 9)
    dp = DeepPot(model_file)
    dp.eval(coord, cell, atype)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dp.eval(coord, cell, atype)
        times.append(time.perf_counter() - start)
    median = float(np.median(times)) * 1e3
    return {"natoms": len(atype), "median_ms": median, "min_ms": float(min(times)) * 1e3,
            "us_per_atom_step": median * 1e3 / len(atype),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def case_kernel(model_file: str, repeats: int) -> dict:
    """The fused table evaluation alone (forward + backward of every table call of one 192-atom evaluation),
    C++ kernel vs the pure torch path on the same inputs."""
    import torch

    from deeppot.infer import DeepPot
    from deeppot.nn import tabulate_kernel
    from deeppot.nn.tabulate import EmbeddingTables

    calls = []
    original = tabulate_kernel.FusedEmbeddingTables.contract

    def record(self, k, x, env):
        calls.append((k, x.detach().clone(), env.detach().clone()))
        return original(self, k, x, env)

    coord = np.load(WATER / "data_3" / "set.000" / "coord.npy")[:1]
    box = np.load(WATER / "data_3" / "set.000" / "box.npy")[:1]
    atype = np.loadtxt(WATER / "data_3" / "type.raw", dtype=np.int64)
    dp = DeepPot(model_file)
    tabulate_kernel.FusedEmbeddingTables.contract = record
    dp.eval(coord, box, atype)
    tabulate_kernel.FusedEmbeddingTables.contract = original
    fused = dp.model.descriptor.tables
    data, info = fused.serialize()
    plain = EmbeddingTables(data, info, fused.width, fused.coefficients.dtype)
    result = {}
    for label, tables in (("kernel", fused), ("torch", plain)):
        times = []
        for _ in range(repeats + 2):
            inputs = [(k, x.clone().requires_grad_(), env.clone().requires_grad_()) for k, x, env in calls]
            start = time.perf_counter()
            total = sum(tables.contract(k, x, env).square().sum() for k, x, env in inputs)
            torch.autograd.grad(total, [t for _, x, env in inputs for t in (x, env)])
            times.append(time.perf_counter() - start)
        result[label] = float(np.median(times[2:])) * 1e6 / len(atype)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--descriptors", nargs="+", default=["se_e2_a", "se_e2_r", "se_e3"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 4], help="replicas per side of the water frame")
    parser.add_argument("--frames", type=int, default=100, help="frames per water system in the accuracy check")
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.case:
        if args.case[1] == "kernel":
            print(json.dumps(case_kernel(args.case[0], args.repeats)))
        else:
            print(json.dumps(case_infer(args.case[0], int(args.case[1]), args.repeats)))
        return
    print(f"threads {args.threads}; load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min) on "
          f"{os.cpu_count()} cores", flush=True)
    for descriptor in args.descriptors:
        print(f"--- {descriptor} (examples/water{'' if descriptor == 'se_e2_a' else '/' + descriptor})", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            compare(descriptor, Path(tmp), args)
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


def run_case(path: Path, case: str, repeats: int, threads: int) -> dict:
    command = [sys.executable, __file__, "--case", str(path), case, "--repeats", str(repeats), "--threads", str(threads)]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])


def compare(descriptor: str, folder: Path, args) -> None:
    frozen, compressed = build_models(folder, descriptor)
    accuracy(frozen, compressed, args.frames)
    for replicas in args.sizes:
        repeats = args.repeats if replicas == 1 else max(3, args.repeats // 2)
        for label, path in (("frozen", frozen), ("compressed", compressed)):
            r = run_case(path, str(replicas), repeats, args.threads)
            print(f"energy+force {r['natoms']:6d} atoms {label:10s} median {r['median_ms']:9.1f} ms "
                  f"(min {r['min_ms']:.1f}), {r['us_per_atom_step']:6.0f} us/atom-step, "
                  f"peak RSS {r['peak_mb']:.0f} MB", flush=True)
    if descriptor == "se_e2_a":
        r = run_case(compressed, "kernel", args.repeats, args.threads)
        print(f"table evaluation alone (forward + backward, 192 atoms): C++ kernel {r['kernel']:.0f} us/atom-step, "
              f"pure torch path {r['torch']:.0f} us/atom-step", flush=True)


if __name__ == "__main__":
    main()
