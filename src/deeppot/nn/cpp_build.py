"""Build and load deeppot's C++ operators (nn/csrc/*.cpp) with the system compiler, at first use.

Each source registers its operators with ``TORCH_LIBRARY``; it is compiled once against the installed torch into
torch's extension cache (``TORCH_EXTENSIONS_DIR``, default ~/.cache/torch_extensions), which is said on stderr,
and loaded into the process. A failure (no compiler, no headers) is a warning, and the caller uses its pure torch
path instead.
"""

import sys
import warnings
from pathlib import Path
from typing import Callable, Optional

CSRC = Path(__file__).resolve().parent / "csrc"


def built_library(name: str) -> Optional[Path]:
    """The compiled library of extension ``name`` if it has been built (for loaders outside Python)."""
    from torch.utils.cpp_extension import _get_build_directory

    path = Path(_get_build_directory(name, False)) / f"{name}.so"
    return path if path.exists() else None


def build_and_load(name: str, source: str, registered: Callable[[], bool], purpose: str, fallback: str) -> bool:
    """Compile (first time only) and load csrc/``source`` as extension ``name``; True if ``registered()`` then
    holds. ``purpose`` names the operator for the build message, ``fallback`` what runs if the build fails."""
    if registered():
        return True
    from torch.utils import cpp_extension

    if built_library(name) is None:
        print(f"deeppot: compiling {purpose} {source} into {cpp_extension._get_build_directory(name, False)} "
              "(once, about a minute)", file=sys.stderr, flush=True)
    try:
        cpp_extension.load(name=name, sources=[str(CSRC / source)], extra_cflags=["-O3", "-march=native", "-fopenmp"],
                           extra_ldflags=["-fopenmp"],
                           is_python_module=False, verbose=False)
    except Exception as exc:  # no compiler, no headers: the pure torch path still works
        warnings.warn(f"deeppot: {purpose} could not be built ({exc.__class__.__name__}: {str(exc)[-300:]}); "
                      f"using {fallback}")
        return False
    return registered()
