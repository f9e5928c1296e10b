"""DeePMD-kit 3.2 (TensorFlow backend) as the baseline beside deeppot's figures, run in the same benchmark.

DeePMD-kit is never imported here: it runs as ``dp --tf train`` from its own virtual environment, so its
TensorFlow and deeppot's PyTorch do not meet. Make that environment once (about 2 GB, all from PyPI):

    python -m venv ~/venvs/deepmd-tf && ~/venvs/deepmd-tf/bin/pip install "deepmd-kit[cpu]==3.2.0"

and pass its folder as ``--deepmd-venv``. The figure is DeePMD-kit's own "average training time" (seconds per
batch, first 10 batches excluded), taken with the thread counts named by the caller.

    python benchmarks/deepmd_baseline.py --deepmd-venv ~/venvs/deepmd-tf --descriptors se_e2_a,se_e2_r
"""

import argparse
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

from bench_water import DESCRIPTORS, water_config

AVERAGE_TIME = re.compile(r"average training time: ([0-9.eE+-]+) s/batch")
WARM_UP_BATCHES = 10  # DeePMD-kit leaves the first 10 batches out of its average


def deepmd_train_ms(config: dict, venv: Path, steps: int, threads: int) -> Optional[float]:
    """DeePMD-kit's own average ms per training step over ``steps`` steps after its warm-up,
    for the input.json ``config`` (data paths absolute), on ``threads`` intra-op threads and one inter-op thread.
    Returns None (and prints DeePMD-kit's last lines) if it fails."""
    dp = Path(venv) / "bin" / "dp"
    if not dp.exists():
        raise SystemExit(f"--deepmd-venv: {dp} not found; make the environment as this module's docstring says")
    config = json.loads(json.dumps(config))
    config["training"].update(numb_steps=steps + WARM_UP_BATCHES, disp_freq=max(1, steps // 4),
                              save_freq=10 * (steps + WARM_UP_BATCHES))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), DP_INTRA_OP_PARALLELISM_THREADS=str(threads),
               DP_INTER_OP_PARALLELISM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    with tempfile.TemporaryDirectory(prefix="deepmd-baseline-") as work:
        (Path(work) / "input.json").write_text(json.dumps(config, indent=1))
        run = subprocess.run([str(dp), "--tf", "train", "input.json"], cwd=work, env=env,
                             capture_output=True, text=True)
    found = AVERAGE_TIME.findall(run.stdout + run.stderr)
    if run.returncode != 0 or not found:
        print("DeePMD-kit failed:\n" + "\n".join((run.stdout + run.stderr).splitlines()[-8:]))
        return None
    return float(found[-1]) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deepmd-venv", type=Path, required=True, help="virtual environment with deepmd-kit[cpu]")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--descriptors", default=",".join(DESCRIPTORS), help="comma-separated, from " + ", ".join(DESCRIPTORS))
    args = parser.parse_args()
    for descriptor in args.descriptors.split(","):
        if descriptor not in DESCRIPTORS:
            parser.error(f"--descriptors: unknown '{descriptor}'; use some of {', '.join(DESCRIPTORS)}")
        ms = deepmd_train_ms(water_config(descriptor, args.steps), args.deepmd_venv, args.steps, args.threads)
        shown = "failed" if ms is None else f"{ms:9.1f} ms"
        print(f"{descriptor:10s} DeePMD-kit 3.2 TF train step (192 atoms, batch auto, {args.threads} thread(s)) "
              f"{shown}", flush=True)


if __name__ == "__main__":
    main()
