"""The fused table kernel ``torch.ops.deeppot.tabulate_contract`` (csrc/tabulate_contract.cpp).

Compiled once with the system C++ compiler against the installed torch, at first use, into torch's extension
cache (``TORCH_EXTENSIONS_DIR``, default ~/.cache/torch_extensions), which is said on stderr. It computes
:meth:`EmbeddingTables.contract` without materialising gathered coefficients, with the exact derivative in C++
autograd, and is callable from the TorchScript file (the LAMMPS plugin compiles the same source into itself).
If it cannot be built, or ``DEEPPOT_TABLE_KERNEL=0``, compressed models use the pure torch path (same numbers
to round-off, slower); a compressed file written with the kernel needs it wherever it is loaded.
"""

import logging
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from deeppot.nn.cpp_build import build_and_load, built_library
from deeppot.nn.tabulate import EmbeddingTables, NetFunction, tabulate_net

log = logging.getLogger("deeppot")

SOURCE = "tabulate_contract.cpp"
NAME = "deeppot_tabulate"
_loaded: List[bool] = []  # [True/False] once tried


def _registered() -> bool:
    try:
        torch.ops.deeppot.tabulate_contract
    except (AttributeError, RuntimeError):
        return False
    return True


def library_path() -> Optional[Path]:
    """The compiled kernel library, if it has been built (for loaders outside Python)."""
    return built_library(NAME)


def kernel_available() -> bool:
    """Build (first time only) and load the kernel; False, with a warning, if that fails."""
    if os.environ.get("DEEPPOT_TABLE_KERNEL", "1") == "0":
        return False
    if not _loaded:
        _loaded.append(build_and_load(NAME, SOURCE, _registered, "the compressed-model kernel",
                                      "the slower pure torch path") and _register_fake_kernels())
    return _loaded[0]


def _register_fake_kernels() -> bool:
    """Output shapes of the two operators for fake tensors (graph capture: make_fx, torch.export)."""

    def contract(table, x, env, *info):
        return x.new_empty((x.shape[0], env.shape[2], table.shape[2]))

    def contract_backward(grad, table, x, env, *info):
        return torch.empty_like(x), torch.empty_like(env)

    for name, fake in (("deeppot::tabulate_contract", contract), ("deeppot::tabulate_contract_backward",
                                                                   contract_backward)):
        try:
            torch.library.register_fake(name)(fake)
        except RuntimeError:  # already registered in this process
            pass
    return True


class FusedEmbeddingTables(EmbeddingTables):
    """EmbeddingTables whose fused contraction runs in the C++ kernel."""

    @torch.jit.export
    def contract(self, k: int, x: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
        """``sum_j env_j^T G_k(x_j)``: x n x w, env n x w x c -> n x c x M."""
        if self.check_frequency > 0:
            self._check_range(k, x)
        info = self.info[k]
        return torch.ops.deeppot.tabulate_contract(
            self.coefficients, x, env, self.bottom[k], info[0], info[1], info[2], info[3], info[4], self.n_below[k],
            self.n_first[k], self.offsets[k], self.rows[k],
        )


def embedding_tables(
    data: List[np.ndarray], info: List[np.ndarray], width: int, dtype: torch.dtype, two_sided: bool = False
) -> EmbeddingTables:
    """Tables evaluated by the C++ kernel when it is available, else by torch operations."""
    cls = FusedEmbeddingTables if kernel_available() else EmbeddingTables
    return cls(data, info, width, dtype, two_sided)


def tabulate_nets(
    nets: Sequence[NetFunction], bounds: Sequence[Tuple[float, float]], extrapolate: float, stride0: float,
    stride1: float, check_frequency: int, width: int, dtype: torch.dtype, two_sided: bool = False,
) -> EmbeddingTables:
    """The tables of one-input nets (each N x 1 -> N x ``width``), net k on ``bounds[k]`` = (lower, upper) with
    stride0, then to ``extrapolate * upper`` (and, two-sided, from ``-max``) with stride1 (spec section 6)."""
    data, info = [], []
    for k, (net, (lower, upper)) in enumerate(zip(nets, bounds)):
        log.info("tabulating embedding net %d on [%g, %g] (stride %g), then to %g (stride %g)%s",
                 k, lower, upper, stride0, extrapolate * upper, stride1, ", both sides" if two_sided else "")
        table, table_info = tabulate_net(net, lower, upper, extrapolate, stride0, stride1, check_frequency, dtype,
                                         two_sided)
        data.append(table)
        info.append(table_info)
    return embedding_tables(data, info, width, dtype, two_sided)


def compressed_entries(tables: EmbeddingTables) -> dict:
    """The keys a compressed descriptor adds to its dict, DeePMD-kit's layout: ``@version`` 3 and ``compress``
    (its ``@variables``: ``compress_data``, a table per net, and ``compress_info``)."""
    table_data, table_info = tables.serialize()
    return {"@version": 3, "compress": {"@variables": {"compress_data": table_data, "compress_info": table_info}}}


def tables_from_entries(compress: dict, width: int, dtype: torch.dtype, two_sided: bool = False) -> EmbeddingTables:
    """The tables of a descriptor dict's ``compress`` entry (DeePMD-kit's or ours)."""
    variables = compress["@variables"]
    data = [np.asarray(d) for d in variables["compress_data"]]
    if any(d.size == 0 for d in data):
        raise ValueError("a compressed descriptor with an empty table (all type pairs of a net excluded) is not "
                         "supported; use the uncompressed model")
    return embedding_tables(data, [np.asarray(i) for i in variables["compress_info"]], width, dtype, two_sided)
