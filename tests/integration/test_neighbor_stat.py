"""``deeppot neighbor-stat`` against a brute-force count over all pairs and periodic images."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest

from deeppot.cli import main
from deeppot.data import DeepmdSystem, expand_systems
from deeppot.data.convert import convert

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
OUTCARS = [DATA / "ch4_vasp" / f"00000{i}" / "OUTCAR" for i in range(3)]
RCUT = 6.0


@pytest.fixture(scope="module")
def ch4_data(tmp_path_factory) -> Path:
    """30 CH4 frames (10 A cubic box) as training_data and validation_data, npy and hdf5."""
    root = tmp_path_factory.mktemp("ns")
    convert(OUTCARS, root / "npy", fmt="vasp/outcar", valid_fraction=0.2, seed=1)
    convert(OUTCARS, root / "h5", fmt="vasp/outcar", to="deepmd/hdf5", valid_fraction=0.2, seed=1)
    return root


def brute_force(paths: list[str], type_map: list[str], rcut: float) -> tuple[np.ndarray, float]:
    """Largest per-type neighbor count and smallest distance, over every pair i != j and every
    periodic image with cell shifts in [-1, 0, 1]^3 (enough when rcut < the cell width, 10 A)."""
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float)  # 27 x 3
    assert not shifts[13].any()  # index 13 is the zero shift
    max_nbor = np.zeros(len(type_map), dtype=int)
    min_dist = np.inf
    for path in paths:
        system = DeepmdSystem.load(path, type_map)
        for coord, box in zip(system.coord, system.box):
            images = shifts @ box  # 27 x 3
            # N x N x 27 distances from atom i to image s of atom j
            dist = np.linalg.norm(coord[None, :, None] + images[None, None] - coord[:, None, None], axis=-1)
            dist[np.arange(system.natoms), np.arange(system.natoms), 13] = np.inf  # atom itself, zero shift
            within = dist < rcut
            for t in range(len(type_map)):
                counts = within[:, system.atype == t].sum(axis=(1, 2))
                max_nbor[t] = max(max_nbor[t], counts.max())
            min_dist = min(min_dist, dist.min())
    return max_nbor, float(min_dist)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


@pytest.mark.parametrize("rcut", [RCUT, 9.0])  # at 9 A the periodic images of the molecule count
def test_cli_matches_brute_force(ch4_data, capsys, caplog, rcut):
    expected_nbor, expected_dist = brute_force(expand_systems(str(ch4_data / "npy")), ["H", "C"], rcut)
    assert (list(expected_nbor) == [4, 1]) == (rcut == RCUT)
    with caplog.at_level(logging.INFO, logger="deeppot"):
        code, captured = run_cli(capsys, "neighbor-stat", "-s", ch4_data / "npy", "-r", rcut, "-t", "H", "C")
    assert code == 0
    lines = captured.out.splitlines()
    assert lines == [f"min_nbor_dist: {expected_dist:f}", f"max_nbor_size: {expected_nbor}"]
    assert 0.9 < expected_dist < 1.2  # a C-H bond
    assert lines[0] not in caplog.text and lines[1] not in caplog.text  # printed once, to stdout only


def test_type_map_order_and_default(ch4_data, capsys):
    _, captured = run_cli(capsys, "neighbor-stat", "-s", ch4_data / "npy", "-r", RCUT, "-t", "C", "H")
    assert "max_nbor_size: [1 4]" in captured.out
    # without -t the systems' type_map.raw (H C) is used
    _, captured = run_cli(capsys, "neighbor-stat", "-s", ch4_data / "npy", "-r", RCUT)
    assert "max_nbor_size: [4 1]" in captured.out


def test_small_cutoff_and_hdf5_input(ch4_data, capsys):
    rcut = 1.5  # only C-H bonds: each H sees the C, the C sees 4 H
    expected_nbor, expected_dist = brute_force(expand_systems(str(ch4_data / "npy")), ["H", "C"], rcut)
    assert list(expected_nbor) == [4, 1]
    _, captured = run_cli(capsys, "neighbor-stat", "-s", ch4_data / "h5" / "training_data.h5", "-r", rcut)
    train_nbor, train_dist = brute_force(expand_systems(str(ch4_data / "h5" / "training_data.h5")),
                                         ["H", "C"], rcut)
    assert captured.out.splitlines() == [f"min_nbor_dist: {train_dist:f}", "max_nbor_size: [4 1]"]
    assert train_dist >= expected_dist


def test_missing_system_is_an_error(tmp_path, capsys):
    code, captured = run_cli(capsys, "neighbor-stat", "-s", tmp_path / "absent", "-r", RCUT)
    assert code != 0 and "absent" in captured.err and "Traceback" not in captured.err
    assert "-s/--system" in captured.err and "input.json" not in captured.err


def test_element_missing_from_type_option_names_the_option(ch4_data, capsys):
    code, captured = run_cli(capsys, "neighbor-stat", "-s", ch4_data / "npy", "-r", RCUT, "-t", "H")
    assert code != 0 and "['C']" in captured.err
    assert "-t/--type-map" in captured.err and "input.json" not in captured.err
