"""Model deviation from LAMMPS (pair_style deeppot m1 m2 m3 out_file ... out_freq ...) equals the offline
``deeppot model-devi`` computation (deeppot.infer.model_devi_run) on the frames LAMMPS dumped."""

import numpy as np
import pytest

from conftest import water_script
from deeppot.infer.model_devi_run import make_model_devi

MD = """mass 1 15.9994
mass 2 1.00794
velocity all create 300 4928459 mom yes rot yes dist gaussian
timestep 0.0005
fix nve all nve
dump frames all custom 5 frames.dump id type x y z
dump_modify frames format float %.17g sort id
run 20
"""


@pytest.mark.parametrize("keywords, nprocs", [("atomic", 2), ("relative 1.0", 1)])
def test_model_devi_out_equals_offline_model_devi(tmp_path, lammps, model_files, keywords, nprocs):
    models = " ".join(str(m) for m in model_files)
    lammps(tmp_path, water_script(f"deeppot {models} out_file md.out out_freq 5 {keywords}", body=MD), nprocs)
    lines = (tmp_path / "md.out").read_text().splitlines()
    header = lines[0].split()
    assert header[:7] == ["#", "step", "max_devi_v", "min_devi_v", "avg_devi_v", "max_devi_f", "min_devi_f"]
    written = np.array([[float(v) for v in line.split()] for line in lines[1:]])
    atomic = keywords == "atomic"
    relative = 1.0 if keywords.startswith("relative") else None
    (offline,) = make_model_devi([str(m) for m in model_files], str(tmp_path / "frames.dump"),
                                 str(tmp_path / "offline.out"), frequency=5, atomic=atomic, relative=relative,
                                 type_map=["O", "H"])
    # offline columns: step, 3 virial, 3 force, devi_e, [per atom]; LAMMPS writes no devi_e
    expected = np.delete(offline, 7, axis=1)
    assert written.shape == expected.shape == (5, 7 + (192 if atomic else 0))
    np.testing.assert_array_equal(written[:, 0], [0, 5, 10, 15, 20])
    np.testing.assert_allclose(written, expected, rtol=1e-8, atol=1e-12)
    assert written[:, 1:].min() > 0  # the models differ
