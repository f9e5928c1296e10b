"""What DPLR's dipole_charge modifier costs, on examples/water_dplr (DeePMD-kit's dw.json / ener.json sizes: se_e2_a
rcut 6, sel [46, 92], [16, 32, 64] x 8; dipole fitting [128, 128, 128], energy fitting [128, 128, 128]) and
../shared/data/water_dplr (30 frames of 128 H2O, 384 atoms, 16.42 A cell; ewald_h 1 -> an 18^3 k grid, 3,429 k
vectors in the half space, 768 charges). Untrained weights with the data's statistics (cost does not depend on
the weights).

Prints, on --threads threads:
- training data preparation: seconds to take the modifier out of the labels of the 30 frames (once per training run),
  and per frame, beside the median ms of one training step of the short-range model (the modifier adds nothing per
  step: the labels are corrected once, in memory);
- evaluation: median ms of DeepPot.eval on one 384-atom frame for the short-range model alone and for the DPLR file
  (model + modifier), i.e. what the modifier adds per evaluation.

    python benchmarks/bench_dplr.py [--repeats 7] [--steps 10] [--threads 1]
"""

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from timing import median_ms

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "water_dplr"


def example(name: str, **modifier) -> dict:
    config = json.loads((ROOT / "examples/water_dplr" / name / "input.json").read_text())
    config["training"]["training_data"]["systems"] = [str(DATA)]
    config["training"].update(disp_freq=10**9, save_freq=10**9)
    if modifier:
        config["model"]["modifier"].update(modifier)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from deeppot.config import validate_input
    from deeppot.data import DeepmdSystem
    from deeppot.export.model_file import save_model_file
    from deeppot.infer import DeepPot
    from deeppot.modifier import build_modifier, modify_training_data
    from deeppot.train.trainer import Trainer

    logging.basicConfig(level=logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="bench_dplr_"))
    dipole = Trainer(validate_input(example("dipole")), output_dir=folder)
    save_model_file(dipole.model, dipole.model_params(), folder / "dipole.pth")
    config = validate_input(example("", model_name=str(folder / "dipole.pth")))

    systems = [DeepmdSystem.load(DATA, ["O", "H"], sort_atoms=True)]
    start = time.perf_counter()
    modify_training_data(config.model, systems)
    prepare = time.perf_counter() - start
    nframes = systems[0].nframes

    trainer = Trainer(config, output_dir=folder)
    step = iter(range(10**6))
    step_ms = median_ms(lambda: trainer.train_step(next(step)), args.steps)

    save_model_file(trainer.model, trainer.model_params(), folder / "plain.pth")
    save_model_file(trainer.model, trainer.model_params(), folder / "dplr.pth",
                    modifier=build_modifier(config.model).serialize())
    frame = DeepmdSystem.load(DATA, ["O", "H"])
    coord, box = frame.coord[:1], frame.box[:1].reshape(1, 9)
    timings = {}
    for name in ("plain", "dplr"):
        dp = DeepPot(folder / f"{name}.pth")
        timings[name] = median_ms(lambda: dp.eval(coord, box, frame.atype), args.repeats)

    print(f"threads {args.threads}; load (uptime): {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(f"training data preparation: {prepare:.2f} s for {nframes} frames ({1000 * prepare / nframes:.0f} ms per "
          f"frame), once per run; a training step of the short-range model: {step_ms:.0f} ms (median of {args.steps})")
    print(f"evaluation, one {frame.natoms}-atom frame (median of {args.repeats}): short range {timings['plain']:.0f} ms, "
          f"with the modifier {timings['dplr']:.0f} ms, added {timings['dplr'] - timings['plain']:.0f} ms")


if __name__ == "__main__":
    main()
