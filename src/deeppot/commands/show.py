"""``deeppot show MODEL ATTRIBUTE...``: what a frozen model or a training checkpoint holds, as ``dp show``.

Attributes, printed in this order whatever order they are given: ``model-branch`` (DeePMD-kit's multi-task
branches: deeppot models are single-task, so this is refused), ``type-map``, ``descriptor`` and ``fitting-net``
(the model section's parameters, every sel resolved to a number), ``size`` (parameter counts of the descriptor,
the fitting net and both), ``observed-type`` (the types with a non-zero output bias, i.e. seen in the training
data statistics: DeePMD-kit's rule for models without recorded types; a tensor model without a bias shows none),
``min-nbor-dist`` (deeppot's: the smallest neighbor distance of the training data,
Angstrom, which ``compress`` uses).
"""

import argparse
import logging
from pathlib import Path

from deeppot.errors import ModelFileError, OptionError

log = logging.getLogger("deeppot")

ATTRIBUTES = ("model-branch", "type-map", "descriptor", "fitting-net", "size", "observed-type", "min-nbor-dist")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "show",
        help="print what a model file or checkpoint holds, as 'dp show'",
        description="Print the type map, descriptor and fitting-net parameters, parameter counts or the minimal "
        "neighbor distance of a frozen model (.pth) or a training checkpoint (.pt).",
    )
    parser.add_argument("INPUT", help="a frozen model file or a training checkpoint")
    parser.add_argument("ATTRIBUTES", nargs="+", choices=ATTRIBUTES, metavar="ATTRIBUTE",
                        help="one or more of: " + ", ".join(ATTRIBUTES))
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    from deeppot.export.freeze import load_model_or_checkpoint

    if "model-branch" in args.ATTRIBUTES:
        raise OptionError("model-branch: lists the branches of a DeePMD-kit multi-task model; deeppot models are "
                          "single-task (one branch); leave model-branch out")
    path = Path(args.INPUT)
    if not path.is_file():
        raise ModelFileError(f"{path}: file not found; give a frozen model (deeppot freeze) or a training "
                             "checkpoint (model.ckpt-<step>.pt)")
    model, meta = load_model_or_checkpoint(path)
    params = meta["model_def_script"]
    log.info("This is a singletask model")
    log.info("The model predicts %s%s", model.output_type,
             ", with a compressed descriptor (tabulated embedding nets)" if model.descriptor.compressed else "")
    if "type-map" in args.ATTRIBUTES:
        log.info("The type_map is %s", list(model.type_map))
    if "descriptor" in args.ATTRIBUTES:
        log.info("The descriptor parameter is %s", params["descriptor"])
    if "fitting-net" in args.ATTRIBUTES:
        log.info("The fitting_net parameter is %s", params["fitting_net"])
    if "size" in args.ATTRIBUTES:
        sizes = {"descriptor": _count(model.descriptor), "fitting-net": _count(model.fitting)}
        sizes["total"] = sizes["descriptor"] + sizes["fitting-net"]
        log.info("Parameter counts:")
        for name in sorted(sizes):
            log.info("Parameters in %s: %s", name, f"{sizes[name]:,}")
    if "observed-type" in args.ATTRIBUTES:
        observed = [name for name, bias in zip(model.type_map, model.out_bias[0].abs().amax(dim=-1)) if bias > 1e-6]
        log.info("The observed types for this model: ")
        log.info("Number of observed types: %d ", len(observed))
        log.info("Observed types: %s ", observed)
    if "min-nbor-dist" in args.ATTRIBUTES:
        if model.min_nbor_dist > 0:
            log.info("The min_nbor_dist is %.6f Angstrom", model.min_nbor_dist)
        else:
            log.info("The min_nbor_dist is not recorded in this file (give 'deeppot compress' the training data)")


def _count(module) -> int:
    """Trainable numbers of ``module`` (a compressed descriptor's tables are not parameters)."""
    return sum(p.numel() for p in module.parameters())
