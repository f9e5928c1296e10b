"""What the DP/ZBL pair table (model/use_srtab) adds per training step and per MD step, on examples/water_zbl
(se_atten rcut 6, sel 120, [25, 50, 100] x 16, attn_layer 0; fitting [240, 240, 240]) and ../shared/data/water
(192 atoms), beside the same model without the table, in the same run. Untrained weights (cost does not depend on
them).

Prints, on --threads threads:
- training: median ms of one training step (batch "auto": 1 frame of 192 atoms) without and with the table;
- MD: median ms of DeepPot.eval (energy, forces, virial; what an ASE step costs) on one frame, without and with.

    python benchmarks/bench_zbl.py [--repeats 7] [--steps 10] [--threads 1]
"""

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

from timing import median_ms

ROOT = Path(__file__).resolve().parents[1]
WATER = ROOT.parent / "shared" / "data" / "water"


def example(with_table: bool) -> dict:
    config = json.loads((ROOT / "examples/water_zbl/input.json").read_text())
    config["model"]["use_srtab"] = str(WATER / "H2O_tab_potential.txt")
    if not with_table:
        for key in ("use_srtab", "smin_alpha", "sw_rmin", "sw_rmax"):
            config["model"].pop(key)
    config["training"]["training_data"]["systems"] = [str(WATER / "data_0")]
    config["training"]["validation_data"]["systems"] = [str(WATER / "data_3")]
    config["training"].update(disp_freq=10**9, save_freq=10**9)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from deeppot.config import validate_input
    from deeppot.export.model_file import save_model_file
    from deeppot.infer import DeepPot
    from deeppot.train.trainer import Trainer

    logging.basicConfig(level=logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="bench_zbl_"))
    coord = np.load(WATER / "data_3/set.000/coord.npy")[:1]
    box = np.load(WATER / "data_3/set.000/box.npy")[:1]
    atype = np.loadtxt(WATER / "data_3/type.raw", dtype=np.int64)
    step_ms, md_ms = {}, {}
    for name, with_table in (("plain", False), ("zbl", True)):
        trainer = Trainer(validate_input(example(with_table)), output_dir=folder / name)
        step = iter(range(10**6))
        step_ms[name] = median_ms(lambda: trainer.train_step(next(step)), args.steps)
        save_model_file(trainer.model, trainer.model_params(), folder / f"{name}.pth")
        dp = DeepPot(folder / f"{name}.pth")
        md_ms[name] = median_ms(lambda: dp.eval(coord, box, atype), args.repeats)

    print(f"threads {args.threads}; load (uptime): {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    for what, ms, count in (("training step", step_ms, args.steps), ("MD step (DeepPot.eval)", md_ms, args.repeats)):
        print(f"{what}, {len(atype)} atoms (median of {count}): plain {ms['plain']:.0f} ms, DP/ZBL {ms['zbl']:.0f} ms, "
              f"added {ms['zbl'] - ms['plain']:.1f} ms ({100 * (ms['zbl'] / ms['plain'] - 1):+.1f} %)")


if __name__ == "__main__":
    main()
