"""Molecular dynamics with pair_style deeppot: energy conservation in NVE."""

import numpy as np

from conftest import thermo_rows, water_script

NVE = """mass 1 15.9994
mass 2 1.00794
velocity all create 300 4928459 mom yes rot yes dist gaussian
timestep 0.0005
fix nve all nve
thermo_style custom step time temp pe etotal
thermo_modify format float %.12g
thermo 50
run 1000
"""


def test_nve_energy_drift_is_small(tmp_path, lammps, water_stat_model):
    """1,000 steps of 0.5 fs on the 192-atom water box; drift = slope of a line fitted to the total energy."""
    lammps(tmp_path, water_script(f"deeppot {water_stat_model}", body=NVE))
    header, rows = thermo_rows(tmp_path / "log.lammps")[-1]
    time_ps, temp, etotal = (rows[:, header.index(name)] for name in ("Time", "Temp", "TotEng"))
    assert len(rows) == 21 and time_ps[-1] == 0.5
    drift = np.polyfit(time_ps, etotal, 1)[0] / 192
    spread = etotal.max() - etotal.min()
    print(f"NVE water 192 atoms, 0.5 fs x 1000: energy drift {drift:.3e} eV/atom/ps, total energy spread "
          f"{spread:.3e} eV, T {temp[0]:.0f} -> {temp[-1]:.0f} K")
    assert abs(drift) < 1e-5 and spread < 1e-3
    assert np.ptp(temp) > 1.0  # the atoms moved and exchanged kinetic and potential energy


def test_two_ranks_give_the_one_rank_trajectory(tmp_path, lammps, model_files):
    """Domain decomposition: 100 NVE steps on 2 MPI ranks follow the 1-rank trajectory to round-off."""
    body = NVE.replace("thermo 50\nrun 1000", "thermo 20\nrun 100").replace(
        "thermo_style custom step time temp pe etotal", "thermo_style custom step time temp pe etotal press")
    tables = {}
    for nprocs in (1, 2):
        folder = tmp_path / f"np{nprocs}"
        folder.mkdir()
        lammps(folder, water_script(f"deeppot {model_files[0]}", body=body), nprocs)
        tables[nprocs] = thermo_rows(folder / "log.lammps")[-1]
    (header, one), (_, two) = tables[1], tables[2]
    assert one.shape == (6, len(header))
    np.testing.assert_allclose(two, one, rtol=1e-9, atol=1e-9)
    assert np.ptp(one[:, header.index("PotEng")]) > 1e-3  # the system moved
