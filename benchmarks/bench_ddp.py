"""Data-parallel training speed (issue 11): steps/s and frames/s of the seed's water model (examples/water,
se_e2_a [25,50,100] x 16, fitting [240,240,240], float64, 192 atoms a frame) trained by 1 and 2 torchrun
processes on this machine, CPU and gloo, one thread per process unless told otherwise.

Cases (each its own torchrun launch, repeated --repeats times; the median is printed):
- ``1 rank x batch B``   one process, ``--threads`` threads (the baseline);
- ``1 rank x batch 2B``  one process, the global batch of two ranks, with ``--threads`` and with twice as many
  threads (the same cores as two ranks);
- ``2 ranks x batch B``  two processes, ``--threads`` threads each, gradients all-reduced every step.
A case times --steps training steps after --warmup steps; frames/s = steps/s x ranks x batch. The load average
is printed before and after, as the machine may be shared.

    python benchmarks/bench_ddp.py [--steps 20] [--warmup 3] [--repeats 3] [--batch-size 1] [--threads 1]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WATER = ROOT.parent / "shared" / "data" / "water"


def water_config(batch_size: int, numb_steps: int) -> dict:
    config = json.loads((ROOT / "examples" / "water" / "input.json").read_text())
    training = config["training"]
    training["training_data"].update(systems=[str(WATER / f"data_{i}") for i in range(3)], batch_size=batch_size)
    del training["validation_data"]
    training.update(numb_steps=numb_steps, disp_freq=10**9, save_freq=10**9)
    config["learning_rate"]["scale_by_worker"] = "none"
    return config


def worker(args: argparse.Namespace) -> None:
    """One torchrun process: build the trainer, warm up, time --steps steps; rank 0 prints a JSON line."""
    import torch

    from deeppot.config import validate_input
    from deeppot.runtime import configure_threads
    from deeppot.train.distributed import World
    from deeppot.train.trainer import Trainer

    configure_threads()
    world = World.from_environment()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(validate_input(water_config(args.batch_size, args.warmup + args.steps)),
                          output_dir=Path(out), world=world)
        for step in range(args.warmup):
            trainer.train_step(step)
        world.gather(None)  # all ranks start the clock together
        start = time.perf_counter()
        for step in range(args.warmup, args.warmup + args.steps):
            trainer.train_step(step)
        world.gather(None)
        seconds = time.perf_counter() - start
    if world.is_main:
        print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads()}), flush=True)
    world.close()


def run_case(ranks: int, batch_size: int, threads: int, args: argparse.Namespace) -> float:
    """Median steps/s of a case over --repeats launches."""
    rates = []
    for _ in range(args.repeats):
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                   __file__, "--worker", f"--steps={args.steps}", f"--warmup={args.warmup}",
                   f"--batch-size={batch_size}"]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            sys.exit(f"case {ranks} rank(s) x batch {batch_size} failed:\n{done.stderr[-3000:]}")
        result = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
        rates.append(args.steps / result["seconds"])
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="threads per process (OMP_NUM_THREADS)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}, threads per process: {args.threads}, "
          f"{args.steps} timed steps after {args.warmup}, median of {args.repeats}")
    b = args.batch_size
    t = args.threads
    print(f"{'case':<34} {'steps/s':>8} {'frames/s':>9}")
    for ranks, batch, threads in ((1, b, t), (1, 2 * b, t), (1, 2 * b, 2 * t), (2, b, t)):
        rate = run_case(ranks, batch, threads, args)
        case = f"{ranks} rank(s) x batch {batch}, {threads} thread(s)"
        print(f"{case:<34} {rate:8.2f} {rate * ranks * batch:9.2f}", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
