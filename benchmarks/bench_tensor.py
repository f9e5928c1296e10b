"""Dipole and polarizability training on DeePMD-kit's water_tensor examples (examples/water_dipole and
examples/water_polar, their full sizes: se_e2_a [25,50,100], fitting [100,100,100], float64) on a short schedule.

Prints, per example, on the given threads:
- ms per training step (batch "auto" = 1 frame of 192 atoms, tensor loss, Adam), median over the steps after
  3 warm-up steps, with the minimum;
- the validation RMSE after the run, of the O atoms' tensors (validation atomic_system) and of the frame
  tensor (validation global_system), every validation frame, beside that of the model after statistics
  only (step 0: the polar model's diagonal shift, the dipole model's untrained nets);
- the machine load (``uptime``) before and after.
The schedule: ``--steps`` steps, the example's lr 0.01 decayed exponentially to its stop_lr over them.
DeePMD-kit's own figures need its PyTorch backend (torch 2.11, a separate environment) and are not taken here.

    OMP_NUM_THREADS=1 python benchmarks/bench_tensor.py [--steps 300] [--threads 1]
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
EXAMPLES = ("water_dipole", "water_polar")


def example_config(name: str, steps: int) -> dict:
    """The example's input.json with absolute data paths, ``steps`` steps and lr decaying over them."""
    config = json.loads((ROOT / "examples" / name / "input.json").read_text())
    for section in ("training_data", "validation_data"):
        data = config["training"][section]
        data["systems"] = [str(SHARED / name / s.split(name + "/")[1]) for s in data["systems"]]
    config["learning_rate"]["decay_steps"] = max(1, steps // 20)
    config["training"].update(numb_steps=steps, disp_freq=10**9, save_freq=10**9)
    return config


def validation_rmse(model, name: str) -> tuple:
    """(RMSE of the O atoms' tensors, RMSE of the frame tensor) on every validation frame."""
    import torch

    from deeppot import keys
    from deeppot.data import DeepmdSystem

    label = keys.DIPOLE if name == "water_dipole" else keys.POLARIZABILITY
    errors = []
    for system, wanted in (("atomic_system", "atom_" + label), ("global_system", label)):
        data = DeepmdSystem.load(SHARED / name / "validation_data_reformat" / system, ["O", "H"],
                                 tensor_labels=[wanted], sel_type=[0])
        box = None if data.box is None else torch.from_numpy(data.box)
        with torch.no_grad():
            out = model(torch.from_numpy(data.coord), torch.from_numpy(data.atype), box, chunk_atoms=256)
        if wanted.startswith("atom_"):
            diff = (out[model.output_name].numpy() - data.tensors[wanted])[:, data.atype == 0]
        else:
            diff = out["global_" + model.output_name].numpy() - data.tensors[wanted]
        errors.append(float(np.sqrt(np.mean(diff**2))))
    return tuple(errors)


def run(name: str, steps: int) -> dict:
    from deeppot.config import validate_input
    from deeppot.train.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="bench-tensor-") as work:
        trainer = Trainer(validate_input(example_config(name, steps)), output_dir=Path(work))
        trainer.model.eval()
        initial = validation_rmse(trainer.model, name)
        trainer.model.train()
        times = []
        for step in range(steps):
            start = time.perf_counter()
            trainer.train_step(step)
            times.append(time.perf_counter() - start)
        trainer.model.eval()
        final = validation_rmse(trainer.model, name)
    times = np.array(times[3:]) * 1e3
    return {"median_ms": float(np.median(times)), "min_ms": float(times.min()), "initial": initial, "final": final}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--examples", default=",".join(EXAMPLES))
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    print(f"threads: {args.threads} (OMP_NUM_THREADS, torch.set_num_threads); load before: "
          f"{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"{'example':14s} {'ms/step':>8s} {'min':>7s}   {'val RMSE atomic (step 0 -> end)':>32s}   "
          f"{'val RMSE global (step 0 -> end)':>32s}")
    for name in args.examples.split(","):
        result = run(name, args.steps)
        (a0, g0), (a1, g1) = result["initial"], result["final"]
        print(f"{name:14s} {result['median_ms']:8.1f} {result['min_ms']:7.1f}   {a0:14.4f} -> {a1:<14.4f}   "
              f"{g0:14.4f} -> {g1:<14.4f}", flush=True)
    print(f"{args.steps} steps each; load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
