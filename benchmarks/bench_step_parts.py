"""Issue 11: where the time of one training step goes, part by part (the per-step overhead of small systems).

Builds the trainer of a case (bench_train_step.py's water or CH4 input, float64, batch "auto"), trains --warmup steps
(the compile of the fast step, every training frame's neighbor slots cached), then times each part of
:meth:`deeppot.train.trainer.Trainer.train_step` on its own as the step calls it (median over --repeats calls, after
one warm-up call): the sampler, the numpy->torch batch, the cached neighbor slots, the model's frames and pair
vectors, the step itself (compiled, or eager forward/forces/loss/backward), zero_grad, gradient averaging,
optimizer.step() and the leaner
FusedAdamStep the trainer calls, and the whole train_step. Parts that change the model run on this scratch trainer.
Prints ``uptime`` before and after and the thread count.

    python benchmarks/bench_step_parts.py [--case ch4] [--fast-step on|off] [--threads 1] [--repeats 300]
"""

import argparse
import subprocess
import tempfile
from pathlib import Path

import torch

from bench_train_step import case_config
from timing import median_ms


def parts(trainer) -> dict:
    """{part: function()} of one training step of ``trainer``, each callable on its own."""
    from deeppot import keys
    from deeppot.train.trainer import batch_to_torch, evaluate_batch, with_model_types

    model, sampler, fast = trainer.model, trainer.train_data.sampler, trainer.fast_step
    raw = sampler.next_batch()
    batch = batch_to_torch(raw, trainer.device)
    slots = trainer.train_neighbors.slots(with_model_types(model, batch))
    coord, atype, box = model.frames(batch[keys.COORD], batch[keys.ATYPE], batch.get(keys.BOX), batch.get(keys.APARAM))
    lr = trainer.schedule.value(0)

    def eager_step():
        pred = evaluate_batch(model, batch, True, trainer.train_neighbors)
        loss, _ = trainer.loss(pred, batch, batch["natoms"], lr)
        loss.backward(inputs=[p for p in model.parameters() if p.requires_grad])

    out = {
        "sampler.next_batch": sampler.next_batch,
        "batch_to_torch": lambda: batch_to_torch(raw, trainer.device),
        "neighbor slots (cached)": lambda: trainer.train_neighbors.slots(with_model_types(model, batch)),
        "model.frames + chunked_pairs": lambda: (
            model.frames(batch[keys.COORD], batch[keys.ATYPE], batch.get(keys.BOX), batch.get(keys.APARAM)),
            list(model.chunked_pairs(coord, atype, box, 0, slots))),
    }
    if fast is not None:
        out["compiled step call (pairs, graph, metrics)"] = lambda: fast(batch, lr, slots)
        grads = fast(batch, lr, slots)[2]
        out["store_gradients"] = lambda: fast.store_gradients(grads)
        fast.store_gradients(grads)
    else:
        out["eager forward+forces+loss+backward"] = eager_step
    out.update({  # with the gradients of the step in p.grad; zero_grad last, as it clears them
        "average_gradients (1 rank)": lambda: trainer.world.average_gradients(model.parameters()),
        "optimizer.step()": trainer.optimizer.step,
        "optimizer step as trained (FusedAdamStep)": trainer.optimizer_step,
        "zero_grad": lambda: trainer.optimizer.zero_grad(set_to_none=True),
    })
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", default="ch4", choices=["ch4", "water"])
    parser.add_argument("--fast-step", default="on", choices=["on", "off"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=40, help="steps trained before timing (compile, slot cache)")
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from deeppot.config import validate_input
    from deeppot.train.trainer import Trainer

    workdir = Path(tempfile.mkdtemp(prefix="bench_step_parts_"))
    config = case_config(args.case, args.warmup + 10 * args.repeats, workdir)
    config["training"]["fast_step"] = args.fast_step
    trainer = Trainer(validate_input(config), output_dir=workdir)
    for step in range(args.warmup):
        trainer.train_step(step)
    print("before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"{args.case}, fast_step {args.fast_step}, {torch.get_num_threads()} thread(s), median of {args.repeats}:")
    for name, function in parts(trainer).items():
        print(f"  {name:45s} {median_ms(function, args.repeats):8.3f} ms")
    step = iter(range(args.warmup, 10**9))
    print(f"  {'whole train_step':45s} {median_ms(lambda: trainer.train_step(next(step)), args.repeats):8.3f} ms")
    print("after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
