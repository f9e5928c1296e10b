"""Map DeePMD-kit precision names to torch dtypes."""

import torch

_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


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
