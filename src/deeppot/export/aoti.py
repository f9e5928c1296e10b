"""AOTInductor export of the MD-engine entry point: an EnergyModel's ``forward_lower`` as a compiled ``.pt2``.

Why: in ``benchmarks/bench_frozen_formats.py`` the compiled package evaluated energy, forces and virials of
the water model 1.3-1.45x faster than eager Python (192 and 12,288 atoms) and several times faster than the
TorchScript module loaded with ``torch.jit.load`` (figures in benchmarks/README.md: the float64 GEMMs, which
compilation does not change, are most of the cost), and TorchScript is deprecated in torch 2.13. How: ``torch.export`` cannot export a function that calls
``torch.autograd.grad``, so the whole lower function (neighbor-list formatting, energy, autograd forces and
virials) is first traced into one aten graph by ``make_fx(tracing_mode="symbolic")``, then exported with
dynamic sizes and compiled by ``torch._inductor.aoti_compile_and_package``. Each package is checked against
the eager model on three small systems of other sizes before it is returned.

Single file. ``save_model_file(..., aoti=True)`` puts the package bytes into the frozen TorchScript archive
as the extra file ``deeppot/model.pt2`` (zip entry ``<archive>/extra/deeppot/model.pt2``, stored
uncompressed), so users still pass one ``.pth``; a file without the entry still runs through TorchScript.

C++ contract (the LAMMPS plugin):
- Find the entry: ``torch::jit::ExtraFilesMap extra{{"deeppot/model.pt2", ""}}`` given to ``torch::jit::load``
  (or read record ``extra/deeppot/model.pt2`` with ``caffe2::serialize::PyTorchStreamReader``); if it is
  empty, use the TorchScript module. Write the bytes to a file of your own (one per process/rank), load with
  ``torch::inductor::AOTIModelPackageLoader loader(path)`` (model name "model"), then delete the file.
- Inputs, in this order, CPU, contiguous, ``nf = 1``:
  ``extended_coord`` float64 [1, nall, 3] (Angstrom, local atoms first),
  ``extended_atype`` int64 [1, nall] (model type index, -1 = virtual atom),
  ``nlist`` int64 [1, nloc, nnei] (indices into the extended atoms, any order, -1 padding, may list
  neighbors beyond rcut; nothing else may be in it),
  then ``fparam`` float64 [1, dim_fparam] only if dim_fparam > 0, then ``aparam`` float64
  [1, nloc, dim_aparam] only if dim_aparam > 0. There is no mapping input: equidistant neighbors at the
  sel cut are ordered by extended index.
- ``loader.run(inputs)`` returns 5 float64 tensors: energy [1, 1] (eV), atom_energy [1, nloc, 1] (eV),
  extended_force [1, nall, 3] (eV/Angstrom, ghosts included: reverse-communicate them),
  virial [1, 9] (eV, row-major 3x3), extended_virial [1, nall, 9] (eV, per extended atom).
- Dynamic: nloc >= 1, nall >= nloc, nnei >= 1 may change on every call (a new neighbor list width needs
  nothing: the graph formats and truncates it itself). The dtypes are NOT checked by the package: float32
  coordinates or int32 indices are read as garbage, convert first. Bad values (index >= nall, type >=
  ntypes, non-finite coordinate, a duplicate neighbor, two atoms at the same place) fail a run-time
  assertion: ``run`` throws ``std::runtime_error``; stop with that message.
- The package is compiled for the CPU it was frozen on (vector ISA) and the torch it was frozen with; if
  loading fails, fall back to the TorchScript module and say so.
- A compressed model's package calls the custom operators ``deeppot::tabulate_contract`` and its backward:
  the process must have them registered (deeppot.nn.tabulate_kernel; the plugin compiles the same source).
- Threads: the package uses torch's intra-op pool; call ``torch::set_num_threads`` as for TorchScript.
"""

import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from deeppot.errors import ModelFileError
from deeppot.model.energy_model import EnergyModel
from deeppot.model.nlist_format import EngineInputError

AOTI_ENTRY = "deeppot/model.pt2"  # extra file of the frozen TorchScript archive
INPUT_NAMES = ("extended_coord", "extended_atype", "nlist", "fparam or aparam", "aparam")
OUTPUT_NAMES = ("energy", "atom_energy", "extended_force", "virial", "extended_virial")
SELF_CHECK_ATOL = 1e-10  # eV, eV/Angstrom: compiled vs eager on the check systems


def lower_function(model: EnergyModel) -> Callable[..., Tuple[torch.Tensor, ...]]:
    """``forward_lower`` with the package's calling convention: (extended_coord, extended_atype, nlist
    [, fparam][, aparam]) -> the five tensors of OUTPUT_NAMES."""
    numb_fparam, numb_aparam = model.fitting.numb_fparam, model.fitting.numb_aparam

    def lower(extended_coord: torch.Tensor, extended_atype: torch.Tensor, nlist: torch.Tensor, *params):
        fparam = params[0] if numb_fparam else None
        aparam = params[-1] if numb_aparam else None
        out = model.forward_lower(extended_coord, extended_atype, nlist, None, fparam, aparam, do_atomic_virial=True)
        return tuple(out[name] for name in OUTPUT_NAMES)

    return lower


def eager_outputs(model: EnergyModel, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
    """What the package must give for ``inputs``: ``forward_lower`` itself, in the order of OUTPUT_NAMES."""
    fparam = inputs[3] if model.fitting.numb_fparam else None
    aparam = inputs[-1] if model.fitting.numb_aparam else None
    out = model.forward_lower(inputs[0], inputs[1], inputs[2], None, fparam, aparam, do_atomic_virial=True)
    return tuple(out[name] for name in OUTPUT_NAMES)


def example_inputs(model: EnergyModel, nloc: int, nall: int, nnei: int, seed: int = 0) -> Tuple[torch.Tensor, ...]:
    """A valid random extended system (nf = 1): atoms in a cube of edge rcut, every row of nlist lists
    distinct other atoms in random order, -1 padded; fparam/aparam if the model takes them."""
    gen = np.random.default_rng(seed)
    coord = gen.random((1, nall, 3)) * model.rcut
    atype = gen.integers(0, model.ntypes, (1, nall))
    nlist = np.full((1, nloc, nnei), -1, dtype=np.int64)
    for i in range(nloc):
        others = gen.permutation(np.delete(np.arange(nall), i))[: nnei - 1]  # one -1 per row at least
        nlist[0, i, : len(others)] = others
        nlist[0, i] = gen.permutation(nlist[0, i])
    inputs = [torch.from_numpy(coord), torch.from_numpy(atype), torch.from_numpy(nlist)]
    if model.fitting.numb_fparam:
        inputs.append(torch.from_numpy(gen.random((1, model.fitting.numb_fparam))))
    if model.fitting.numb_aparam:
        inputs.append(torch.from_numpy(gen.random((1, nloc, model.fitting.numb_aparam))))
    return tuple(inputs)


def export_lower(model: EnergyModel) -> torch.export.ExportedProgram:
    """The traced lower function of ``model`` with dynamic nloc, nall and nnei."""
    from torch.export import Dim
    from torch.fx.experimental.proxy_tensor import make_fx

    model = model.eval()
    # distinct sizes >= 2, so that tracing gives each its own symbol and specialises none
    trace_inputs = example_inputs(model, nloc=5, nall=17, nnei=11, seed=1)
    graph = make_fx(lower_function(model), tracing_mode="symbolic", _allow_non_fake_inputs=True)(*trace_inputs)
    nloc, nall, nnei = Dim("nloc", min=1), Dim("nall", min=1), Dim("nnei", min=1)
    shapes: List[Dict[int, Dim]] = [{1: nall}, {1: nall}, {1: nloc, 2: nnei}]
    if model.fitting.numb_fparam:
        shapes.append({})
    if model.fitting.numb_aparam:
        shapes.append({1: nloc})
    return torch.export.export(graph, trace_inputs, dynamic_shapes=tuple(shapes), strict=False)


def compile_package(model: EnergyModel, verbose: bool = False) -> bytes:
    """The ``.pt2`` package of ``model``'s lower entry point (tens of seconds of C++ compilation), checked
    against eager ``forward_lower`` on three systems of sizes other than the traced ones."""
    start = time.perf_counter()
    program = export_lower(model)
    with tempfile.TemporaryDirectory(prefix="deeppot-aoti-") as tmp:
        path = os.path.join(tmp, "model.pt2")
        torch._inductor.aoti_compile_and_package(program, package_path=path)
        package = Path(path).read_bytes()
    if verbose:
        print(f"AOTInductor package compiled in {time.perf_counter() - start:.0f} s ({len(package) / 1e6:.1f} MB)")
    _self_check(model, package)
    return package


def _self_check(model: EnergyModel, package: bytes) -> None:
    runner = load_package(package)
    for nloc, nall, nnei in ((3, 8, 6), (9, 30, 27), (7, 7, 12)):
        inputs = example_inputs(model, nloc, nall, nnei, seed=nloc)
        expected = eager_outputs(model, inputs)
        got = runner(*inputs)
        for name, want, have in zip(OUTPUT_NAMES, expected, got):
            if want.shape != have.shape or not torch.allclose(want, have, rtol=0.0, atol=SELF_CHECK_ATOL):
                raise RuntimeError(
                    f"AOTInductor package disagrees with the eager model on {name} (nloc={nloc}, nall={nall}, "
                    f"nnei={nnei}); freeze without the compiled package and report this"
                )


def load_package(package: bytes) -> Callable[..., List[torch.Tensor]]:
    """A Python callable of the package's calling convention (see the module docstring); it refuses inputs
    of other dtypes, which the compiled code would misread."""
    with tempfile.TemporaryDirectory(prefix="deeppot-aoti-") as tmp:
        path = os.path.join(tmp, "model.pt2")
        Path(path).write_bytes(package)
        compiled = torch._inductor.aoti_load_package(path)

    def run(*inputs: torch.Tensor) -> List[torch.Tensor]:
        dtypes = [torch.float64, torch.int64, torch.int64] + [torch.float64] * (len(inputs) - 3)
        for name, value, dtype in zip(INPUT_NAMES, inputs, dtypes):
            if value.dtype != dtype:
                raise EngineInputError(f"{name} must be {dtype} for the compiled model, got {value.dtype}")
        return compiled(*inputs)

    return run


def read_package(path: Path) -> Optional[bytes]:
    """The ``.pt2`` bytes embedded in a frozen model file, or None if it has none."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if name.endswith("/extra/" + AOTI_ENTRY)]
            return archive.read(names[0]) if names else None
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{path}: not a frozen deeppot model ({exc.__class__.__name__})") from None


def load_frozen_package(path: Path) -> Callable[..., List[torch.Tensor]]:
    """The compiled entry point of a frozen model file, as a Python callable (for tests and benchmarks)."""
    package = read_package(path)
    if package is None:
        raise ModelFileError(f"{path}: has no compiled package; freeze it again with the AOTInductor option")
    return load_package(package)


def as_dict(outputs: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The package's outputs by name, as ``forward_lower`` returns them."""
    return dict(zip(OUTPUT_NAMES, outputs))
