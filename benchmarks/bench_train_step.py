"""Issue 11: the compiled training step (training/fast_step, deeppot.train.step) beside the eager step and
DeePMD-kit 3.2 TF, float64, one process, batch "auto".

Cases: the seed's water se_e2_a (examples/water/input.json, 192 atoms) on 1 and 2 threads, the seed's CH4
(examples/ch4/input.json, 5 atoms, data converted as bench_ch4.py does) on 1 thread. Each case runs in its own
process with its thread count set: two trainers from the same input and seed, one eager (fast_step "off"), one
compiled ("on"), stepped alternately over the same batches (interleaved, so machine load hits both alike): --block
steps (default 10) of one, then as many of the other, so that as in a training run a step mostly follows a step of
the same trainer, not the other trainer's working set (--block 1 alternates every step). The neighbor slots of
every training frame are searched before the clock starts, as a long run has them cached after its first epoch.
Prints per case the compile time (first compiled step), the median ms per step of each over --steps steps, and the
largest relative difference of the loss (and of the weights after the last step) between the two trajectories. With
--deepmd-venv, DeePMD-kit's own ms per step for the same input and threads (benchmarks/deepmd_baseline.py) right
after the case. ``uptime`` is printed before and after every case.

With --reference python-wrapper the first trainer is compiled too, with Inductor's Python wrapper instead of the
C++ one the step uses: the C++ wrapper's gain. With --reference no-rewrites it is compiled without the step's graph
pass (deeppot.nn.graph_passes: tanh from one exp, addmm as mm + add, ...): the gain of those rewrites.

    python benchmarks/bench_train_step.py [--steps 100] [--cases water:1,water:2,ch4:1] [--deepmd-venv DIR]
                                          [--reference eager|python-wrapper|no-rewrites] [--block 10]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_water import water_config

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def ch4_config(numb_steps: int, workdir: Path) -> dict:
    """The seed's CH4 input on the OUTCARs converted as bench_ch4.py does (into ``workdir``, once)."""
    data = workdir / "ch4_data"
    if not data.exists():
        outcars = sorted(str(p) for p in (SHARED / "data" / "ch4_vasp").glob("*/OUTCAR"))
        subprocess.run(["deeppot", "convert", *outcars, "-o", str(data), "--fmt", "vasp/outcar", "--valid-fraction",
                        "0.2", "--seed", "1", "--force"], check=True, capture_output=True)
    config = json.loads((ROOT / "examples" / "ch4" / "input.json").read_text())
    config["training"]["training_data"]["systems"] = [str(data / "training_data")]
    config["training"]["validation_data"]["systems"] = [str(data / "validation_data")]
    config["training"].update(numb_steps=numb_steps, disp_freq=10**9, save_freq=10**9)
    return config


def case_config(system: str, steps: int, workdir: Path) -> dict:
    return water_config("se_e2_a", steps) if system == "water" else ch4_config(steps, workdir)


REFERENCE_VARIANTS = {
    "python-wrapper": ("compiled, Python wrapper", lambda graph_pass: {"post_grad_custom_post_pass": graph_pass}),
    "no-rewrites": ("compiled, graph not rewritten", lambda graph_pass: {"cpp_wrapper": True}),
}
"""--reference: the compiled step with one of its parts undone (label, Inductor options from the step's graph pass)."""


def compiled_variant(fast_step, reference: str) -> None:
    """Make the compiled step ``fast_step`` run the variant ``reference`` of REFERENCE_VARIANTS: compiled from a copy
    of its function (its own code object, so Dynamo does not hand it the graph cached for the original)."""
    import types

    import torch

    from deeppot.train.step import batch_guards_only

    label, options = REFERENCE_VARIANTS[reference]
    function = type(fast_step)._loss_and_grads
    name = "_loss_and_grads_" + reference.replace("-", "_")
    copy = types.FunctionType(function.__code__.replace(co_name=name), function.__globals__, name,
                              function.__defaults__, function.__closure__)
    fast_step.attempts = [(label, torch.compile(types.MethodType(copy, fast_step), fullgraph=True, dynamic=None,
                                                options={**options(fast_step.graph_pass),
                                                         "guard_filter_fn": batch_guards_only}))]


def fill_neighbor_cache(trainer) -> None:
    """Search the neighbor slots of every training frame now: a training run does so once per frame (its first draw,
    deeppot.train.neighbor_cache), so the steps of a long run do not pay it (water: ~12 ms a frame on 1 thread, 320
    frames, most of them drawn for the first time within --steps)."""
    from deeppot.data.batching import iter_frames

    for index, system in enumerate(trainer.train_data.systems):
        for batch in iter_frames(system, 16, index):
            trainer.train_neighbors.slots(batch)


def run_case(system: str, steps: int, workdir: Path, reference: str = "eager", block: int = 10) -> dict:
    """Reference (eager, or a variant of the compiled step: REFERENCE_VARIANTS) and compiled trainers stepped
    alternately, ``block`` steps of one then ``block`` of the other; times in ms, differences relative."""
    import torch

    from deeppot.config import validate_input
    from deeppot.train.trainer import Trainer

    config = case_config(system, steps, workdir)
    trainers = {}
    for name, setting in (("eager", "off" if reference == "eager" else "on"), ("compiled", "on")):
        config["training"]["fast_step"] = setting
        trainers[name] = Trainer(validate_input(config), output_dir=workdir)
    if reference != "eager":
        compiled_variant(trainers["eager"].fast_step, reference)
    for trainer in trainers.values():
        fill_neighbor_cache(trainer)
    times = {name: [] for name in trainers}
    losses = {name: [] for name in trainers}
    compile_s = 0.0
    for first in range(0, steps, block):
        for name, trainer in trainers.items():
            for step in range(first, min(first + block, steps)):
                start = time.perf_counter()
                metrics, _ = trainer.train_step(step)
                elapsed = time.perf_counter() - start
                if step == 0 and name == "compiled":
                    compile_s = elapsed
                times[name].append(elapsed * 1e3)
                losses[name].append(metrics["rmse"] ** 2)
    eager_loss, fast_loss = np.array(losses["eager"]), np.array(losses["compiled"])
    weights = trainers["eager"].model.state_dict()
    weight_diff = max(float((v - weights[k]).abs().max() / weights[k].abs().max().clamp(min=1e-300))
                      for k, v in trainers["compiled"].model.state_dict().items() if v.is_floating_point() and v.numel())
    warm = slice(3, None)  # first steps: compile and allocator warm-up
    return {"eager_ms": float(np.median(times["eager"][warm])), "compiled_ms": float(np.median(times["compiled"][warm])),
            "compile_s": compile_s, "loss_rel_diff": float(np.max(np.abs(fast_loss - eager_loss) / eager_loss)),
            "weight_rel_diff": weight_diff, "steps": steps, "threads": torch.get_num_threads()}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--cases", default="water:1,water:2,ch4:1", help="system:threads, comma-separated")
    parser.add_argument("--deepmd-venv", default=None, help="DeePMD-kit 3.2 TF venv (benchmarks/deepmd_baseline.py)")
    parser.add_argument("--deepmd-steps", type=int, default=20)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--reference", default="eager", choices=["eager", *REFERENCE_VARIANTS],
                        help="what the compiled step is timed against: the eager step, or the compiled step with "
                             "Inductor's Python wrapper (the C++ wrapper's gain) or without the graph rewrites "
                             "of deeppot.nn.graph_passes (their gain)")
    parser.add_argument("--block", type=int, default=10,
                        help="steps each trainer takes before the other takes as many (1: strictly alternate)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_train_step_"))
    if args.case:
        import torch

        system, threads = args.case.split(":")
        torch.set_num_threads(int(threads))
        print(json.dumps(run_case(system, args.steps, workdir, args.reference, args.block)))
        return
    for case in args.cases.split(","):
        system, threads = case.split(":")
        if system not in ("water", "ch4"):
            parser.error(f"--cases: unknown system '{system}'; use water or ch4")
        env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        print(f"[{case}] before: {uptime()}", flush=True)
        command = [sys.executable, __file__, "--case", case, "--steps", str(args.steps), "--workdir", str(workdir),
                   "--reference", args.reference, "--block", str(args.block)]
        output = subprocess.run(command, capture_output=True, text=True, env=env)
        if output.returncode != 0:
            raise SystemExit(f"{case} failed:\n{output.stderr[-3000:]}")
        r = json.loads(output.stdout.strip().splitlines()[-1])
        print(f"[{case}] {r['threads']} thread(s), {r['steps']} steps: {args.reference} {r['eager_ms']:.1f} ms, "
              f"compiled {r['compiled_ms']:.1f} ms (median), compile {r['compile_s']:.0f} s; loss trajectory max rel "
              f"diff {r['loss_rel_diff']:.1e}, weights after {r['steps']} steps {r['weight_rel_diff']:.1e}", flush=True)
        if args.deepmd_venv:
            from deepmd_baseline import deepmd_train_ms

            ms = deepmd_train_ms(case_config(system, args.deepmd_steps, workdir), Path(args.deepmd_venv),
                                 args.deepmd_steps, int(threads))
            print(f"[{case}] DeePMD-kit 3.2 TF: {ms if ms is None else round(ms, 1)} ms per step "
                  f"({args.deepmd_steps} steps)", flush=True)
        print(f"[{case}] after: {uptime()}", flush=True)


if __name__ == "__main__":
    main()
