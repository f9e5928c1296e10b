"""Accuracy and wall time of the seed's CH4 example, as the issue's DeePMD-kit comparison.

Converts the 30 OUTCARs with `deeppot convert --valid-fraction 0.2 --seed 1`, trains the seed's
input.json for --steps steps (decay_steps 100) on one thread, freezes, and runs `deeppot test` on the
60 validation frames. Prints the wall time of training, ms per step and the test figures.
DeePMD-kit 3.2 (TensorFlow, one core) reaches 0.12 meV/atom energy RMSE and 15.5 meV/A force RMSE
in about 2.3 minutes (6.9 ms/step) with this input and schedule.

    python benchmarks/bench_ch4.py [--steps 20000] [--workdir DIR]
"""

import argparse
import glob
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def run(command, cwd, env):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return result.stdout + result.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--model-seed", type=int, default=None,
                        help="replace the descriptor and fitting seeds of the input (1) to see the spread over initialisations")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_ch4_"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    outcars = sorted(glob.glob(str(SHARED / "data" / "ch4_vasp" / "*" / "OUTCAR")))
    print(run(["deeppot", "convert", *outcars, "-o", "ch4_data", "--fmt", "vasp/outcar", "--valid-fraction", "0.2",
               "--seed", "1", "--force"], workdir, env).strip())
    config = json.loads((ROOT / "examples" / "ch4" / "input.json").read_text())
    config["training"].update(numb_steps=args.steps)
    config["learning_rate"]["decay_steps"] = 100
    if args.model_seed is not None:
        config["model"]["descriptor"]["seed"] = config["model"]["fitting_net"]["seed"] = args.model_seed
    (workdir / "input.json").write_text(json.dumps(config, indent=2))
    start = time.perf_counter()
    run(["deeppot", "train", "input.json"], workdir, env)
    wall = time.perf_counter() - start
    run(["deeppot", "freeze", "-o", "model.pth"], workdir, env)
    report = run(["deeppot", "test", "-m", "model.pth", "-s", "ch4_data/validation_data", "-n", "60"], workdir, env)
    figures = {key: float(value) for key, value in re.findall(r"(Energy RMSE/Natoms|Force  RMSE)\s*:\s*(\S+)", report)}
    print(f"workdir {workdir}, model seed {config['model']['descriptor']['seed']}")
    print(f"training: {args.steps} steps in {wall:.1f} s wall ({wall / 60:.2f} min, {wall / args.steps * 1e3:.2f} ms/step,"
          " including data loading and statistics), one thread")
    print(f"validation (60 frames): energy RMSE {figures['Energy RMSE/Natoms'] * 1e3:.3f} meV/atom, "
          f"force RMSE {figures['Force  RMSE'] * 1e3:.1f} meV/A")
    print("DeePMD-kit 3.2 TF reference: 0.12 meV/atom, 15.5 meV/A, about 2.3 min (6.9 ms/step)")


if __name__ == "__main__":
    main()
