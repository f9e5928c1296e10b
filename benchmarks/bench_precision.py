"""What each precision costs and gives on the seed's water (examples/water/input.json, se_e2_a [25,50,100] x 16,
fitting [240,240,240], batch "auto" = one 192-atom frame, energy + force loss): float64 (the example), float32
(descriptor and fitting ``precision`` float32) and mixed precision (``training/mixed_precision``, float32 weights,
layers computing in bfloat16; float16 with ``--float16``), side by side in one run.

Prints, per precision:
- ms per training step, median of --steps steps after 3 warm-up steps, on 1 thread and on 2 threads;
- the validation force and energy RMSE after --train-steps steps (default 2,000, learning rate 1e-3 decaying to
  3.51e-8 every --decay-steps steps) over all 80 frames of water data_3, evaluated in the model's own precision.

Each case runs in its own process (a fresh model, OMP_NUM_THREADS as named, OMP_WAIT_POLICY=PASSIVE as the
command line sets it); the load average is printed before and after, since the machine is shared.

    python benchmarks/bench_precision.py [--steps 20] [--train-steps 2000] [--decay-steps 100] [--float16]
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_water import WATER, water_config  # noqa: E402  (the same water input as bench_water.py)

PRECISIONS = ("float64", "float32", "bfloat16", "float16")
"""float64, float32: the networks' ``precision``; bfloat16, float16: mixed precision's compute_prec."""


def precision_config(precision: str, numb_steps: int, decay_steps: int) -> dict:
    """The seed's water input at one precision, ``numb_steps`` steps."""
    config = copy.deepcopy(water_config("se_e2_a", numb_steps))
    config["learning_rate"]["decay_steps"] = decay_steps
    model = config["model"]
    if precision in ("float64", "float32"):
        model["descriptor"]["precision"] = model["fitting_net"]["precision"] = precision
    else:
        config["training"]["mixed_precision"] = {"output_prec": "float32", "compute_prec": precision}
    return config


def validation_rmse(model) -> dict:
    """Energy (per atom, eV) and force (eV/Angstrom) RMSE over every frame of water data_3."""
    import torch

    from deeppot.data import DeepmdSystem

    system = DeepmdSystem.load(WATER / "data_3", ["O", "H"], sort_atoms=True)
    energy_err, force_err = [], []
    for start in range(0, system.nframes, 10):
        frames = slice(start, start + 10)
        out = model(torch.from_numpy(system.coord[frames]), torch.from_numpy(system.atype),
                    torch.from_numpy(system.box[frames]))
        energy_err.append(out["energy"].detach().numpy().reshape(-1) - system.energy[frames].reshape(-1))
        force_err.append((out["force"].detach().numpy() - system.force[frames]).reshape(-1))
    natoms = system.natoms
    return {"rmse_e_per_atom": float(np.sqrt(np.mean(np.concatenate(energy_err) ** 2))) / natoms,
            "rmse_f": float(np.sqrt(np.mean(np.concatenate(force_err) ** 2)))}


def case(precision: str, kind: str, steps: int, decay_steps: int) -> dict:
    """``kind`` "speed": ms per step; "accuracy": train ``steps`` steps, then the validation RMSEs."""
    from deeppot.config import validate_input
    from deeppot.train.trainer import Trainer

    config = precision_config(precision, steps, decay_steps)
    trainer = Trainer(validate_input(config), output_dir=Path("/tmp"))
    warmup = 3 if kind == "speed" else 0
    times = []
    for step in range(steps + warmup):
        start = time.perf_counter()
        trainer.train_step(step)
        times.append(time.perf_counter() - start)
    times = np.array(times[warmup:]) * 1e3
    result = {"median_ms": float(np.median(times)), "wall_s": float(times.sum() / 1e3)}
    if kind == "accuracy":
        result.update(validation_rmse(trainer.model.eval()))
    return result


def run_case(precision: str, kind: str, threads: int, steps: int, decay_steps: int) -> dict:
    command = [sys.executable, __file__, "--case", f"{precision}:{kind}:{threads}", "--steps", str(steps),
               "--decay-steps", str(decay_steps)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}  # deeppot's default
    output = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per speed case")
    parser.add_argument("--train-steps", type=int, default=2000, help="steps of each accuracy run")
    parser.add_argument("--decay-steps", type=int, default=100, help="learning-rate decay steps")
    parser.add_argument("--float16", action="store_true", help="also train mixed precision with float16")
    parser.add_argument("--precisions", help="comma-separated subset of the accuracy runs, from " + ", ".join(PRECISIONS))
    parser.add_argument("--skip-speed", action="store_true", help="accuracy runs only")
    parser.add_argument("--skip-accuracy", action="store_true", help="speed cases only")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        import torch

        precision, kind, threads = args.case.split(":")
        torch.set_num_threads(int(threads))
        print(json.dumps(case(precision, kind, args.steps, args.decay_steps)))
        return
    precisions = args.precisions.split(",") if args.precisions else PRECISIONS if args.float16 else PRECISIONS[:3]
    if args.skip_accuracy:
        precisions = []
    print("load average before:", os.getloadavg(), flush=True)
    if not args.skip_speed:
        for threads in (1, 2):
            for precision in PRECISIONS:
                result = run_case(precision, "speed", threads, args.steps, args.decay_steps)
                print(f"speed  {precision:9s} {threads} thread(s): {result['median_ms']:7.1f} ms per step "
                      f"(median of {args.steps})", flush=True)
    for precision in precisions:
        result = run_case(precision, "accuracy", 1, args.train_steps, args.decay_steps)
        print(f"accuracy {precision:9s} after {args.train_steps} steps (1 thread, {result['wall_s'] / 60:.1f} min, "
              f"median {result['median_ms']:.1f} ms/step): validation force RMSE {result['rmse_f'] * 1e3:.1f} meV/A, "
              f"energy RMSE {result['rmse_e_per_atom'] * 1e3:.2f} meV/atom", flush=True)
    print("load average after:", os.getloadavg(), flush=True)


if __name__ == "__main__":
    main()
