"""pair_style deeppot with a DP/ZBL model (the pair table inside the frozen file) equals DeepPot.eval on the water
frame, on 1 and 2 MPI ranks: energy, forces, per-atom energy and virials. With the switch between 0.8 and 1.6 A
every water atom (O-H bonds near 1 A) takes part of its energy from the table, ghost atoms included."""

import numpy as np
import pytest

from conftest import RCUT, SEL, make_model
from deeppot.export.model_file import save_model_file
from deeppot.infer import DeepPot
from test_lammps_parity import check, lammps_and_reference
from zbl_models import make_zbl_model


@pytest.fixture(scope="module")
def zbl_file(tmp_path_factory, plugin_dir):
    """The DP/ZBL file and the file of its DP part alone."""
    folder = tmp_path_factory.mktemp("zbl")
    save_model_file(make_zbl_model(rcut=RCUT, rcut_smth=0.5, sel=SEL, seed=5), {}, folder / "zbl.pth")
    save_model_file(make_model(rcut=RCUT, rcut_smth=0.5, sel=SEL, seed=5), {}, folder / "dp.pth")
    return folder / "zbl.pth"


@pytest.mark.parametrize("nprocs", [1, 2])
def test_run0_equals_deeppot_eval(tmp_path, lammps, zbl_file, nprocs):
    rows, col, thermo, reference = lammps_and_reference(lammps, tmp_path, zbl_file, nprocs)
    check(rows, col, thermo, reference)
    coord = rows[:, [col["x"], col["y"], col["z"]]]
    dp_alone = DeepPot(zbl_file.with_name("dp.pth")).eval(coord[None], np.eye(3).reshape(1, 9) * 12.44470,
                                                          np.where(rows[:, col["type"]] == 2, 0, 1))[1][0]
    assert np.abs(reference[1] - dp_alone).max() > 1.0, "the table should change the forces"
