"""Precisions: DeePMD-kit precision names as torch dtypes, and mixed precision of a model.

Mixed precision is DeePMD-kit TF's ``training/mixed_precision`` {``output_prec``: float32, ``compute_prec``:
float16 or bfloat16}. As there, it is a property of the networks, not of the training loop:

- the descriptor's and the fitting's ``precision`` become ``output_prec`` (float32 master weights, the
  networks' inputs and outputs; :func:`mixed_precision_section`);
- inside each embedding-net layer and each hidden fitting-net layer, the input, weights, bias and timestep
  are cast to ``compute_prec`` and the layer's output back to float32; the fitting's output layer stays float32
  (:meth:`deeppot.nn.mlp.DenseLayer.enable_mixed_precision`);
- everything outside the networks keeps its own precision: pair vectors from float64 coordinates, the
  environment matrix and the descriptor contraction in the descriptor's float32, atomic energies cast to float64
  before the energy sum, forces and virials (autograd to the float64 coordinates) and the loss in float64, the
  statistics summed in float64.

The same holds for a plain float32 model (``precision: float32``). Compared with DeePMD-kit: TF builds the
environment matrix in float64 and casts it to float32 at the embedding; PT and dpmodel cast the extended
coordinates to float32 first. deeppot subtracts coordinates in float64 and casts the pair vectors, so large
coordinates lose nothing. Energy sums, forces and virials are float64 in all three.

A checkpoint and a frozen file record the setting (``mixed_precision`` entry, :func:`mixed_precision_of`), so a
frozen mixed-precision model evaluates with the same casts it was trained and validated with (as a frozen TF
graph keeps its casts), in Python, ASE and LAMMPS alike. A compressed mixed model tabulates the nets as they
compute (in bfloat16/float16) and evaluates the tables in float32. DeePMD-kit's backend-independent dict has no
place for the setting: the networks' ``precision`` says float32 there.
"""

from typing import Dict, Optional

import torch

_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}

MIXED_PRECISION_DESCRIPTORS = ("se_e2_a",)
"""Descriptor types mixed precision is implemented for (DeePMD-kit documents se_e2_a only)."""
MIXED_PRECISION_FITTINGS = ("ener",)
"""Fitting types mixed precision is implemented for."""


def resolve_dtype(precision: str) -> torch.dtype:
    """``"default"`` means float64, as in DeePMD-kit with ``DP_INTERFACE_PREC=high``."""
    if precision == "default":
        return torch.float64
    return _DTYPES[precision]


def precision_name(dtype: torch.dtype) -> str:
    for name, candidate in _DTYPES.items():
        if candidate == dtype:
            return name
    raise ValueError(f"unsupported dtype {dtype}")


def mixed_precision_problems(model_config, source: str = "input.json") -> list:
    """Messages for a validated model section that mixed precision cannot train (empty: it can)."""
    problems = []
    descriptor_type = model_config.descriptor.type
    if descriptor_type not in MIXED_PRECISION_DESCRIPTORS:
        problems.append(
            f"{source}: training/mixed_precision: works with descriptor type {', '.join(MIXED_PRECISION_DESCRIPTORS)} "
            f"only (as in DeePMD-kit), model/descriptor/type is '{descriptor_type}'; remove training/mixed_precision "
            "or set the descriptor's precision to float32 for a float32 model"
        )
    fitting_type = model_config.fitting_net.type
    if fitting_type not in MIXED_PRECISION_FITTINGS:
        problems.append(
            f"{source}: training/mixed_precision: not implemented for fitting type '{fitting_type}' "
            f"(only {', '.join(MIXED_PRECISION_FITTINGS)}); remove training/mixed_precision"
        )
    return problems


def check_mixed_precision_device(mixed_precision, device: torch.device) -> None:
    """ConfigError if the device cannot compute in ``mixed_precision.compute_prec`` (bfloat16 on a CUDA GPU older
    than Ampere). Every CPU torch runs both float16 and bfloat16 (float16 slower: benchmarks/bench_precision.py)."""
    from deeppot.errors import ConfigError

    if mixed_precision is None or device.type != "cuda" or mixed_precision.compute_prec != "bfloat16":
        return
    if not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"training/mixed_precision/compute_prec: bfloat16 is not supported by this GPU "
            f"({torch.cuda.get_device_name(device)}); use float16, or train with --device cpu"
        )


def mixed_precision_section(model_config, mixed_precision):
    """The model section with the descriptor's and the fitting's ``precision`` set to ``output_prec`` (float32),
    as DeePMD-kit forces them under mixed precision; unchanged if ``mixed_precision`` is None."""
    if mixed_precision is None:
        return model_config
    output = mixed_precision.output_prec
    return model_config.model_copy(update={
        "descriptor": model_config.descriptor.model_copy(update={"precision": output}),
        "fitting_net": model_config.fitting_net.model_copy(update={"precision": output}),
    })


def enable_mixed_precision(model, mixed_precision: Optional[Dict[str, str]]) -> None:
    """Make ``model``'s descriptor embedding nets and fitting nets compute in ``mixed_precision["compute_prec"]``
    (their weights must already be in ``output_prec``); nothing if ``mixed_precision`` is None."""
    if mixed_precision is None:
        return
    output_dtype, compute_dtype = (resolve_dtype(mixed_precision[k]) for k in ("output_prec", "compute_prec"))
    nets = list(model.descriptor.embeddings) + list(model.fitting.nets)
    weight_dtypes = {net.layers[0].w.dtype for net in nets}
    if weight_dtypes != {output_dtype}:
        names = ", ".join(sorted(precision_name(d) for d in weight_dtypes))
        raise ValueError(f"mixed precision needs {mixed_precision['output_prec']} networks, these are {names}")
    for net in nets:
        net.enable_mixed_precision(compute_dtype)


def mixed_precision_of(model) -> Optional[Dict[str, str]]:
    """``{"output_prec", "compute_prec"}`` of a model whose networks compute in mixed precision, else None; what
    checkpoints and frozen files record."""
    for module in model.modules():
        if getattr(module, "mixed", False):
            return {"output_prec": precision_name(module.w.dtype), "compute_prec": precision_name(module.compute_dtype)}
    return None
