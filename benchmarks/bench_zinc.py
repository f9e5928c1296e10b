"""Training-step time of se_a_mask on DeePMD-kit's zinc_protein example (examples/zinc_protein/input.json:
147-atom frames padded with virtual atoms, 76 and 35 real; embedding [32,32,64,128] x 16, two-side nets,
fitting [240,240,240], batch 2), beside se_e2_a with the same sizes, a 6 A cut-off (rcut_smth 0.5, sel "auto")
and the same aparam mask (use_aparam_as_mask works with any descriptor): the cost of having no cut-off.

Prints the median and minimum ms per training step (float64, energy + force loss, Adam) over --steps steps
after 3 warm-up steps, on --threads threads, with the machine load (uptime) before and after.

    python benchmarks/bench_zinc.py [--steps 10] [--threads 1]
"""

import argparse
import copy
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ZINC = ROOT.parent / "shared" / "data" / "zinc_protein"


def zinc_config(descriptor: str) -> dict:
    config = json.loads((ROOT / "examples" / "zinc_protein" / "input.json").read_text())
    if descriptor == "se_e2_a":
        section = copy.deepcopy(config["model"]["descriptor"])
        section.update(type="se_e2_a", rcut=6.0, rcut_smth=0.5, sel="auto")
        config["model"]["descriptor"] = section
    training = config["training"]
    training["training_data"]["systems"] = [str(ZINC / "train_data_dp_mask")]
    training["validation_data"]["systems"] = [str(ZINC / "val_data_dp_mask")]
    training.update(disp_freq=10**9, save_freq=10**9)
    return config


def step_times(descriptor: str, steps: int) -> np.ndarray:
    from deeppot.config import validate_input
    from deeppot.train.trainer import Trainer

    trainer = Trainer(validate_input(zinc_config(descriptor)), output_dir=Path("/tmp"))
    times = []
    for step in range(steps + 3):
        start = time.perf_counter()
        trainer.train_step(step)
        times.append(time.perf_counter() - start)
    return np.array(times[3:]) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}; load before: {os.getloadavg()[0]:.2f} (1-min average)")
    for descriptor in ("se_a_mask", "se_e2_a"):
        times = step_times(descriptor, args.steps)
        print(f"{descriptor:10s} train step (2 frames of 147 atoms) median {np.median(times):8.1f} ms "
              f"(min {times.min():.1f}) over {args.steps} steps", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
