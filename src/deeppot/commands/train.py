"""``deeppot train input.json [--restart CKPT | --init-model CKPT | --finetune MODEL [--model-branch RANDOM]]
[--device auto|cpu|cuda]``."""

import argparse
import logging
from pathlib import Path

from deeppot.config import load_input
from deeppot.errors import ConfigError, OptionError
from deeppot.train.device import DEVICE_CHOICES

log = logging.getLogger("deeppot")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "train",
        help="train a model from a DeePMD-kit input.json",
        description="Train a model. Writes lcurve.out, out.json, model.ckpt-<step>.pt and a 'checkpoint' "
        "file naming the latest checkpoint, in the current folder. Under torchrun (torchrun --nproc_per_node=N "
        "-m deeppot train input.json) N processes train data-parallel; rank 0 writes the files.",
    )
    parser.add_argument("INPUT", help="input.json (or .yaml) in DeePMD-kit's format")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("-r", "--restart", metavar="CKPT",
                       help="continue an interrupted run from this checkpoint: weights, optimizer, learning rate, "
                       "data order and step all resume")
    start.add_argument("-i", "--init-model", metavar="CKPT",
                       help="start a new run (step 0) from the weights of this checkpoint")
    start.add_argument("-t", "--finetune", metavar="MODEL",
                       help="fine-tune a pretrained checkpoint or frozen model on this input's data: its weights, "
                       "type_map mapped by element name to input.json's (a subset or another order), the output bias "
                       "refitted on the new data; input.json's descriptor must match the pretrained one")
    parser.add_argument("--model-branch", default="", metavar="BRANCH",
                        help="with --finetune: RANDOM re-initialises the fitting net (only the descriptor is "
                        "pretrained; the bias is set, not changed, from the data); deeppot models are single-task")
    parser.add_argument("--use-pretrain-script", action="store_true",
                        help="with --finetune: take the descriptor and fitting_net sections from the pretrained model "
                        "instead of input.json (input.json's trainable flags kept)")
    parser.add_argument("-o", "--output", default="out.json", help="normalized input written here (default out.json)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                        help="where to train: auto (a CUDA GPU if torch sees one, else the CPU; the default), cpu or "
                        "cuda. Checkpoints hold CPU tensors either way")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    from deeppot.runtime import configure_threads
    from deeppot.train.device import resolve_device
    from deeppot.train.distributed import World
    from deeppot.train.trainer import Trainer, write_out_json

    if not Path(args.INPUT).is_file():
        raise ConfigError(f"{args.INPUT}: input file not found")
    if (args.model_branch or args.use_pretrain_script) and not args.finetune:
        raise OptionError("--model-branch and --use-pretrain-script apply to --finetune only; give --finetune "
                          "MODEL or leave them out")
    config = load_input(args.INPUT)
    device = resolve_device(args.device)
    world = World.from_environment()  # several processes under torchrun, else one
    log.info(configure_threads().describe())
    try:
        trainer = Trainer(config, restart=args.restart, init_model=args.init_model, world=world,
                          device=device, finetune=args.finetune, model_branch=args.model_branch,
                          use_pretrain_script=args.use_pretrain_script)
        if world.is_main:
            write_out_json(trainer, Path(args.output))
        trainer.run()
    finally:
        world.close()
