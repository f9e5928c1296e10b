"""How the thread settings behave when cores are shared: the evidence behind deeppot's default.

Times the seed's water training step (192 atoms, float64; as ``bench_water.py``) in a fresh process for
each setting, first on the machine as it is, then with ``--hogs`` busy processes competing for cores
(each a Python ``while True`` loop), and prints the median ms per step:

- ``1 thread``: ``DP_INTRA_OP_PARALLELISM_THREADS=1``;
- ``N threads, spin``: N threads with OpenMP's active wait (``OMP_WAIT_POLICY=ACTIVE``, what torch does
  when nothing is set);
- ``N threads, passive``: N threads with ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep instead of spinning);
- ``deeppot default``: no thread variable set, so deeppot chooses (``deeppot.runtime.configure_threads``).

    python benchmarks/bench_threads.py [--steps 15] [--threads 2] [--hogs 1]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "DP_INTRA_OP_PARALLELISM_THREADS",
                    "DP_INTER_OP_PARALLELISM_THREADS")


def run_case(extra_env: dict, steps: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(extra_env)
    code = (
        "import json, sys, time, numpy as np\n"
        "from deeppot.runtime import configure_threads\n"
        "configure_threads()\n"
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
        "from bench_water import case_train\n"
        f"print(json.dumps(case_train(\"se_e2_a\", {steps})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["median_ms"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hogs", type=int, default=1, help="busy processes started for the 'shared' column")
    args = parser.parse_args()
    n = str(args.threads)
    cases = {
        "1 thread": {"DP_INTRA_OP_PARALLELISM_THREADS": "1"},
        f"{n} threads, spin": {"DP_INTRA_OP_PARALLELISM_THREADS": n, "OMP_WAIT_POLICY": "ACTIVE"},
        f"{n} threads, passive": {"DP_INTRA_OP_PARALLELISM_THREADS": n, "OMP_WAIT_POLICY": "PASSIVE"},
        "deeppot default": {},
    }
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; water train step, ms (median)")
    results = {name: [run_case(env, args.steps)] for name, env in cases.items()}
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    try:
        for name, env in cases.items():
            results[name].append(run_case(env, args.steps))
    finally:
        for hog in hogs:
            hog.kill()
    print(f"{'setting':24s} {'as is':>10s} {f'+{args.hogs} busy':>10s}")
    for name, (quiet, shared) in results.items():
        print(f"{name:24s} {quiet:10.1f} {shared:10.1f}")


if __name__ == "__main__":
    main()
