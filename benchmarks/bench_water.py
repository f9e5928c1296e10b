"""Speed and memory on the water models of examples/water, float64: the seed's se_e2_a ([25,50,100] x 16,
fitting [240,240,240], examples/water/input.json) and each other descriptor's DeePMD-kit example
(examples/water/<descriptor>/input.json: se_e2_r [5,10,20] with fitting [120,120,120]; se_e3 [2,4,8], rcut 5.8,
sel "auto", fitting [240,240,240]; hybrid: se_e2_a 4 A [10,20,40] x 4 + se_e2_r 6 A [5,10,20] + se_atten 6 A
[5,10,20] without attention on the 138 nearest, one fitting [240,240,240]; se_e2_a_tebd: the seed's se_e2_a, type_one_side, with a [2,4,8] type embedding, one embedding
and one fitting net; loc_frame: sel_a [16,32], sel_r [30,60], rcut 6, no embedding net, fitting [240,120,60,30,10];
se_atten / se_atten_v2: sel 120 (any type), [25,50,100] x 16, tebd 8, attn 128 x 2 layers, fitting [240,240,240]).

Prints, per descriptor, on one thread:
- ms per training step (batch "auto" = 1 frame of 192 atoms, energy + force loss, Adam), median
  over --steps steps after warm-up;
- ms per energy+force evaluation and microseconds per atom-step for the 192-atom water frame and
  for it replicated 4x4x4 (12,288 atoms), with the peak resident memory of each case.
Each case runs in its own process so peak memory is per case.

    python benchmarks/bench_water.py [--steps 20] [--repeats 5] [--threads 1] [--descriptors se_e2_a,se_e2_r,se_e3]
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WATER = ROOT.parent / "shared" / "data" / "water"


DESCRIPTORS = ("se_e2_a", "se_e2_r", "se_e3", "hybrid", "se_e2_a_tebd", "loc_frame", "se_atten", "se_atten_v2")
"""se_e2_a is the seed's example (examples/water/input.json), the others examples/water/<name>/input.json."""


def water_config(descriptor: str, numb_steps: int) -> dict:
    folder = ROOT / "examples" / "water"
    config = json.loads((folder / ("" if descriptor == "se_e2_a" else descriptor) / "input.json").read_text())
    training = config["training"]
    training["training_data"]["systems"] = [str(WATER / f"data_{i}") for i in range(3)]
    training["validation_data"]["systems"] = [str(WATER / "data_3")]
    training.update(numb_steps=numb_steps, disp_freq=10**9, save_freq=10**9)
    return config


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def case_train(descriptor: str, steps: int) -> dict:

    from deeppot.config import validate_input
    from deeppot.train.trainer import Trainer

    trainer = Trainer(validate_input(water_config(descriptor, steps)), output_dir=Path("/tmp"))
    times = []
    for step in range(steps + 3):
        start = time.perf_counter()
        trainer.train_step(step)
        times.append(time.perf_counter() - start)
    times = np.array(times[3:]) * 1e3
    return {"case": "train step (192 atoms, batch auto)", "median_ms": float(np.median(times)),
            "min_ms": float(times.min()), "peak_mb": peak_mb()}


def replicated_water(replicas: int):
    """The first frame of water data_3 replicated replicas^3 times: coord (N x 3, Angstrom), atype (N),
    box (3 x 3, Angstrom), N = 192 * replicas^3."""
    coord = np.load(WATER / "data_3" / "set.000" / "coord.npy")[0].reshape(-1, 3)
    box = np.load(WATER / "data_3" / "set.000" / "box.npy")[0].reshape(3, 3)
    atype = np.loadtxt(WATER / "data_3" / "type.raw", dtype=np.int64)
    shifts = np.array([[i, j, k] for i in range(replicas) for j in range(replicas) for k in range(replicas)])
    coord = (coord[None] + (shifts @ box)[:, None]).reshape(-1, 3)
    return coord, np.tile(atype, len(shifts)), box * replicas


def case_infer(descriptor: str, replicas: int, repeats: int) -> dict:
    import torch

    from deeppot.config import validate_input
    from deeppot.infer.deep_pot import DEFAULT_BATCH_ATOMS
    from deeppot.train.trainer import Trainer

    trainer = Trainer(validate_input(water_config(descriptor, 0)), output_dir=Path("/tmp"))
    model = trainer.model.eval()
    coord, atype, box = replicated_water(replicas)
    args = (torch.from_numpy(coord[None]), torch.from_numpy(atype[None]), torch.from_numpy(box[None]))
    model(*args, chunk_atoms=DEFAULT_BATCH_ATOMS)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(*args, chunk_atoms=DEFAULT_BATCH_ATOMS)
        times.append(time.perf_counter() - start)
    median = float(np.median(times)) * 1e3
    natoms = len(atype)
    return {"case": f"energy+force, {natoms} atoms", "median_ms": median, "min_ms": float(min(times)) * 1e3,
            "us_per_atom_step": median * 1e3 / natoms, "peak_mb": peak_mb()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--descriptors", default=",".join(DESCRIPTORS), help="comma-separated, from " + ", ".join(DESCRIPTORS))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        import torch

        torch.set_num_threads(args.threads)
        descriptor, kind, value = args.case.split(":")
        if kind == "train":
            result = case_train(descriptor, args.steps)
        else:
            result = case_infer(descriptor, int(value), args.repeats)
        print(json.dumps(result))
        return
    for descriptor in args.descriptors.split(","):
        if descriptor not in DESCRIPTORS:
            parser.error(f"--descriptors: unknown '{descriptor}'; use some of {', '.join(DESCRIPTORS)}")
        for case in ("train:1", "infer:1", "infer:4"):
            repeats = max(2, args.repeats // 2) if case == "infer:4" else args.repeats
            command = [sys.executable, __file__, "--case", f"{descriptor}:{case}", "--steps", str(args.steps),
                       "--threads", str(args.threads), "--repeats", str(repeats)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            extra = f", {result['us_per_atom_step']:.0f} us/atom-step" if "us_per_atom_step" in result else ""
            print(f"{descriptor:8s} {result['case']:36s} median {result['median_ms']:9.1f} ms "
                  f"(min {result['min_ms']:.1f}){extra}, peak RSS {result['peak_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
