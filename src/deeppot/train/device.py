"""The device training runs on (``deeppot train --device {auto,cpu,cuda}``) and device-free saved state.

``auto`` takes CUDA when torch sees a GPU, else the CPU. The model, its optimizer state and each batch live on
the chosen device; neighbor lists are searched on the CPU and moved. Checkpoints (and so frozen files) always
hold CPU tensors, so a model trained on a GPU gives the same files as one trained on the CPU.
"""

import logging
from typing import Any

from deeppot.errors import OptionError

log = logging.getLogger("deeppot")

DEVICE_CHOICES = ("auto", "cpu", "cuda")  # torch is imported on use, so that the command line parses without it


def resolve_device(choice: str = "auto") -> "torch.device":
    """The torch device of a ``--device`` choice; says which is used. OptionError for CUDA without a GPU."""
    import torch

    if choice not in DEVICE_CHOICES:
        raise OptionError(f"--device {choice}: not a device choice; use one of {', '.join(DEVICE_CHOICES)}")
    has_cuda = torch.cuda.is_available()
    if choice == "cuda" and not has_cuda:
        raise OptionError(
            "--device cuda: torch sees no CUDA GPU here (torch " + torch.__version__ + ", "
            + ("built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no device found")
            + "); train on the CPU with --device cpu (or auto), or install a CUDA build of torch on a GPU machine"
        )
    device = torch.device("cuda" if choice == "cuda" or (choice == "auto" and has_cuda) else "cpu")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    log.info("training on %s (%s)%s", device, where, " (--device auto)" if choice == "auto" else "")
    return device


def on_cpu(state: Any) -> Any:
    """``state`` (nested dicts, lists, tuples) with every tensor copied to the CPU, as files hold them."""
    import torch

    if isinstance(state, torch.Tensor):
        return state.detach().cpu() if state.device.type != "cpu" else state
    if isinstance(state, dict):
        return {key: on_cpu(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(on_cpu(value) for value in state)
    return state
