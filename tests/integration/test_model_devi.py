"""``deeppot model-devi``: DeePMD-kit's formulas and file layout, water frames from deepmd/npy and from a
LAMMPS dump, and bad input with messages that fit the command."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from deeppot.cli import main
from deeppot.export.model_file import save_model_file
from deeppot.infer import DeepPot
from deeppot.infer.model_devi import (
    append_model_devi_out,
    calc_model_devi_e,
    calc_model_devi_f,
    calc_model_devi_v,
    model_devi_columns,
)
from helpers import WATER

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "physics"))
from deeppot_test_models import make_model  # noqa: E402

NFRAMES = 3


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def blocks(path: Path):
    """[(title, column line, rows as an array)] of a model_devi.out."""
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("# ") and (not out or out[-1][1] is not None):
            out.append([line[2:], None, []])
        elif line.startswith("# "):
            out[-1][1] = line[2:]
        else:
            out[-1][2].append(line)
    return [(title, header, rows) for title, header, rows in out]


def parse(rows):
    return np.array([[float(x) for x in row.split()] for row in rows])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Three small frozen water models that differ only in their seeds, and one with type_map H O."""
    folder = tmp_path_factory.mktemp("models")
    paths = []
    for seed in (1, 2, 3):
        path = folder / f"graph.{seed - 1:03d}.pth"
        save_model_file(make_model(rcut=4.0, sel=(20, 40), type_map=["O", "H"], seed=seed), {}, path)
        paths.append(path)
    other = folder / "swapped.pth"
    save_model_file(make_model(rcut=4.0, sel=(20, 40), type_map=["H", "O"], seed=4), {}, other)
    return paths, other


@pytest.fixture(scope="module")
def water_system(tmp_path_factory):
    """The first NFRAMES frames of water/data_3 (deepmd/npy, labelled)."""
    folder = tmp_path_factory.mktemp("water")
    source = WATER / "data_3"
    for name in ("type.raw", "type_map.raw"):
        (folder / name).write_text((source / name).read_text())
    (folder / "set.000").mkdir()
    for name in ("coord", "box", "energy", "force"):
        np.save(folder / "set.000" / f"{name}.npy", np.load(source / "set.000" / f"{name}.npy")[:NFRAMES])
    return folder


def expected_columns(paths, coord, box, atype, real=None, relative=None, relative_v=None):
    """The 7 columns written out by hand from each model's DeepPot predictions (spec section 7)."""
    nf, natoms = coord.shape[0], coord.shape[1]
    preds = [DeepPot(p).eval(coord, box.reshape(nf, 9), atype) for p in paths]
    e = np.stack([p[0].reshape(nf) for p in preds]) / natoms
    f = np.stack([p[1] for p in preds])
    v = np.stack([p[2] for p in preds]) / natoms
    if real is None:
        dev_f = np.sqrt(((f - f.mean(0)) ** 2).mean(0).sum(-1))
        dev_v = np.sqrt(((v - v.mean(0)) ** 2).mean(0))
        dev_e = np.sqrt(((e - e.mean(0)) ** 2).mean(0))
    else:
        dev_f = np.sqrt(((f - real["force"]) ** 2).mean(0).sum(-1))
        dev_v = np.sqrt(((v - real["virial"] / natoms) ** 2).mean(0))
        dev_e = np.sqrt(((e - real["energy"] / natoms) ** 2).mean(0))
    if relative is not None:
        dev_f = dev_f / (np.linalg.norm(f.mean(0), axis=-1) + relative)
    if relative_v is not None:
        dev_v = dev_v / (np.linalg.norm(v.mean(0), axis=-1) + relative_v)[:, None]
    columns = [dev_v.max(1), dev_v.min(1), np.sqrt((dev_v**2).sum(1) / 9), dev_f.max(1), dev_f.min(1),
               dev_f.mean(1), dev_e]
    return np.stack(columns, axis=1), dev_f


def load_water_frames(system):
    coord = np.load(system / "set.000" / "coord.npy").astype(np.float64).reshape(NFRAMES, -1, 3)
    box = np.load(system / "set.000" / "box.npy").astype(np.float64).reshape(NFRAMES, 3, 3)
    atype = np.loadtxt(system / "type.raw", dtype=np.int64)
    return coord, box, atype


# ----------------------------------------------------------------------------------------- formulas
def test_formulas_match_deepmd_kit(tmp_path):
    """calc_model_devi_f/v/e, the column assembly and the file equal DeePMD-kit 3.2's numpy functions."""
    dp_devi = pytest.importorskip("deepmd.infer.model_devi")
    assert not any(name.startswith("deepmd.pt") for name in sys.modules), "the oracle must not load deepmd.pt"
    rng = np.random.default_rng(0)
    nm, nf, natoms = 4, 5, 7
    fs = rng.normal(size=(nm, nf, natoms, 3))
    vs = rng.normal(size=(nm, nf, 9))
    es = rng.normal(size=(nm, nf, 1))
    real_f, real_v, real_e = rng.normal(size=(nf, natoms, 3)), rng.normal(size=(nf, 9)), rng.normal(size=(nf, 1))
    for kwargs in ({}, {"real_f": real_f}, {"relative": 0.3}, {"real_f": real_f, "relative": 0.5}):
        ours = calc_model_devi_f(fs, atomic=True, **kwargs)
        theirs = dp_devi.calc_model_devi_f(fs, atomic=True, **kwargs)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)
    for kwargs in ({}, {"real_v": real_v}):
        for a, b in zip(calc_model_devi_v(vs, **kwargs), dp_devi.calc_model_devi_v(vs, **kwargs)):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)
    # DeePMD-kit's relative virial broadcasts the magnitude correctly only for a single frame
    for a, b in zip(calc_model_devi_v(vs[:, :1], relative=0.2), dp_devi.calc_model_devi_v(vs[:, :1], relative=0.2)):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)
    np.testing.assert_allclose(calc_model_devi_e(es), dp_devi.calc_model_devi_e(es), rtol=1e-14, atol=0)
    np.testing.assert_allclose(calc_model_devi_e(es, real_e), dp_devi.calc_model_devi_e(es, real_e), rtol=1e-14)

    # columns and file: DeePMD-kit's calc_model_devi on stand-in models that return fixed predictions
    energies, virials = es[:, :, 0] * natoms, vs * natoms

    class Fixed:
        def __init__(self, k):
            self.k = k

        def eval(self, coord, box, atype, **kwargs):
            return energies[self.k][:, None], fs[self.k], virials[self.k]

    coord = np.zeros((nf, natoms * 3))
    for atomic in (False, True):
        theirs = dp_devi.calc_model_devi(coord, None, np.zeros(natoms, dtype=int), [Fixed(k) for k in range(nm)],
                                         frequency=10, atomic=atomic, relative=0.4)
        ours = model_devi_columns(energies, fs, virials, atomic=atomic, relative=0.4)
        np.testing.assert_array_equal(theirs[:, 0], np.arange(nf) * 10)
        np.testing.assert_allclose(ours, theirs[:, 1:], rtol=1e-13, atol=0)
        dp_devi.write_model_devi_out(theirs, str(tmp_path / f"theirs{atomic}.out"), header="sys", atomic=atomic)
        append_model_devi_out(tmp_path / f"ours{atomic}.out", np.arange(nf) * 10, ours, "sys", atomic)
        assert (tmp_path / f"ours{atomic}.out").read_text() == (tmp_path / f"theirs{atomic}.out").read_text()


# ---------------------------------------------------------------------------------------- the command
def test_model_devi_water(models, water_system, tmp_path, capsys):
    paths, _ = models
    out = tmp_path / "model_devi.out"
    code, err = run(capsys, "model-devi", "-m", *paths, "-s", water_system, "-o", out, "-f", 10)
    assert code == 0, err
    coord, box, atype = load_water_frames(water_system)
    expected, _ = expected_columns(paths, coord, box, atype)
    [(title, header, rows)] = blocks(out)
    assert title == str(water_system)
    assert header.split() == ["step", "max_devi_v", "min_devi_v", "avg_devi_v", "max_devi_f", "min_devi_f",
                              "avg_devi_f", "devi_e"]
    assert all(len(row) == 12 + 7 * 19 for row in rows)  # %12d then 7 x %19.6e
    table = parse(rows)
    np.testing.assert_array_equal(table[:, 0], [0, 10, 20])
    np.testing.assert_allclose(table[:, 1:], expected, rtol=2e-6, atol=0)  # printed to 7 digits
    assert np.all(expected[:, 3] > 0) and np.all(expected[:, 6] > 0)  # the models do differ

    # appended, with --atomic and --relative / --relative_v
    code, err = run(capsys, "model-devi", "-m", *paths, "-s", water_system, "-o", out, "--atomic",
                    "--relative", 1.0, "--relative_v", 0.5)
    assert code == 0, err
    first, second = blocks(out)
    assert first[2] == rows
    assert second[1].split()[-1] == "atm_devi_f(N)"
    table = parse(second[2])
    assert table.shape == (NFRAMES, 8 + len(atype))
    expected, per_atom = expected_columns(paths, coord, box, atype, relative=1.0, relative_v=0.5)
    np.testing.assert_allclose(table[:, 1:8], expected, rtol=2e-6, atol=0)
    np.testing.assert_allclose(table[:, 8:], per_atom, rtol=2e-6, atol=1e-12)


def test_real_error(models, water_system, tmp_path, capsys):
    """--real_error: the RMS error of the models against the labels (here without virials: nan columns)."""
    paths, _ = models
    out = tmp_path / "real.out"
    code, err = run(capsys, "model-devi", "-m", paths[0], "-s", water_system, "-o", out, "--real_error")
    assert code == 0, err
    coord, box, atype = load_water_frames(water_system)
    labels = {"energy": np.load(water_system / "set.000" / "energy.npy"),
              "force": np.load(water_system / "set.000" / "force.npy").reshape(NFRAMES, -1, 3),
              "virial": np.zeros((NFRAMES, 9))}
    expected, _ = expected_columns(paths[:1], coord, box, atype, real=labels)
    table = parse(blocks(out)[0][2])
    assert np.all(np.isnan(table[:, 1:4]))
    np.testing.assert_allclose(table[:, 4:], expected[:, 3:], rtol=2e-6, atol=0)


def test_folder_of_systems_and_hdf5(models, water_system, tmp_path, capsys):
    """A folder with two systems gives two blocks, one per system; the same frames in deepmd/hdf5 the same rows."""
    import dpdata

    paths, _ = models
    folder = tmp_path / "systems"
    for name in ("a", "b"):
        shutil.copytree(water_system, folder / name)
    out = tmp_path / "two.out"
    code, err = run(capsys, "model-devi", "-m", *paths, "-s", folder, "-o", out)
    assert code == 0, err
    (title_a, _, rows_a), (title_b, _, rows_b) = blocks(out)
    assert (title_a, title_b) == (str(folder / "a"), str(folder / "b")) and rows_a == rows_b
    h5 = tmp_path / "water.h5"
    dpdata.LabeledSystem(str(water_system), fmt="deepmd/npy").to("deepmd/hdf5", str(h5))
    code, err = run(capsys, "model-devi", "-m", *paths, "-s", h5, "-o", tmp_path / "h5.out")
    assert code == 0, err
    [(title, _, rows)] = blocks(tmp_path / "h5.out")
    assert title.startswith(str(h5)) and rows == rows_a


def write_dump(path, coord, box, lammps_types, rng):
    """A LAMMPS dump (orthogonal box, atoms listed in random order by id), one block per frame."""
    lines = []
    for frame, xyz in enumerate(coord):
        order = rng.permutation(len(xyz))
        lines += ["ITEM: TIMESTEP", str(frame * 10), "ITEM: NUMBER OF ATOMS", str(len(xyz)),
                  "ITEM: BOX BOUNDS pp pp pp"]
        lines += [f"0.0 {box[frame][k, k]:.12f}" for k in range(3)]
        lines.append("ITEM: ATOMS id type x y z")
        lines += [f"{i + 1} {lammps_types[i]} {xyz[i, 0]:.12f} {xyz[i, 1]:.12f} {xyz[i, 2]:.12f}" for i in order]
    path.write_text("\n".join(lines) + "\n")


def test_lammps_dump(models, water_system, tmp_path, capsys):
    """A dump of the same frames gives the same numbers, LAMMPS types named by the models' type_map or by -t."""
    paths, _ = models
    coord, box, atype = load_water_frames(water_system)
    assert np.allclose(box, np.diag(np.diag(box[0]))[None])  # the water box is orthogonal
    wrapped = coord - np.floor(coord / np.diag(box[0])) * np.diag(box[0])
    rng = np.random.default_rng(1)
    write_dump(tmp_path / "same.dump", wrapped, box, atype + 1, rng)
    write_dump(tmp_path / "swapped.dump", wrapped, box, 2 - atype, rng)  # LAMMPS type 1 = H, 2 = O
    expected, per_atom = expected_columns(paths, coord, box, atype)
    for dump, extra in (("same.dump", []), ("swapped.dump", ["-t", "H", "O"])):
        out = tmp_path / f"{dump}.out"
        code, err = run(capsys, "model-devi", "-m", *paths, "-s", tmp_path / dump, "-o", out, "--atomic", *extra)
        assert code == 0, err
        table = parse(blocks(out)[0][2])
        np.testing.assert_allclose(table[:, 1:8], expected, rtol=2e-6, atol=0)
        np.testing.assert_allclose(table[:, 8:], per_atom, rtol=2e-6, atol=1e-12)  # atoms in id order


# ------------------------------------------------------------------------------------------- bad input
def test_bad_input(models, water_system, tmp_path, capsys):
    paths, swapped = models
    # a system with carbon, which the models lack
    carbon = tmp_path / "carbon"
    (carbon / "set.000").mkdir(parents=True)
    (carbon / "type_map.raw").write_text("O H C\n")
    (carbon / "type.raw").write_text("0 1 1 2\n")
    np.save(carbon / "set.000" / "coord.npy", np.arange(12.0).reshape(1, 12))
    np.save(carbon / "set.000" / "box.npy", 10 * np.eye(3).reshape(1, 9))
    not_dump = tmp_path / "notes.txt"
    not_dump.write_text("hello\n")
    dump = tmp_path / "one.dump"
    write_dump(dump, np.load(water_system / "set.000" / "coord.npy")[:1].reshape(1, -1, 3) % 12.4447,
               np.load(water_system / "set.000" / "box.npy")[:1].reshape(1, 3, 3),
               np.loadtxt(water_system / "type.raw", dtype=int) + 1, np.random.default_rng(0))
    cases = [
        (["-m", paths[0], tmp_path / "missing.pth", "-s", water_system], ["missing.pth", "not found"]),
        (["-m", paths[0], swapped, "-s", water_system], ["swapped.pth", "type_map ['H', 'O']", "same type_map"]),
        (["-m", *paths, "-s", carbon], ["type_map.raw", "['C']", "not in the type_map"]),
        (["-m", paths[0], "-s", water_system], ["at least two models", "--real_error"]),
        (["-m", *paths, "-s", water_system, "--relative", "0"], ["--relative 0.0", "positive"]),
        (["-m", *paths, "-s", water_system, "-f", "0"], ["-f/--frequency 0"]),
        (["-m", *paths, "-s", not_dump], ["notes.txt", "ITEM: TIMESTEP"]),
        (["-m", *paths, "-s", tmp_path / "nowhere"], ["nowhere", "-s/--system"]),
        (["-m", *paths, "-s", dump, "-t", "O", "X"], ["-t/--type-map", "['X']", "not in the models' type_map"]),
        (["-m", *paths, "-s", dump, "-t", "O"], ["-t/--type-map", "LAMMPS types 1..2"]),
        (["-m", *paths, "-s", water_system, "-t", "O", "H"], ["-t/--type-map", "type_map.raw"]),
        (["-m", *paths, "-s", dump, "--real_error"], ["one.dump", "energy.npy", "--real_error"]),
    ]
    for argv, pieces in cases:
        out = tmp_path / "bad.out"
        code, err = run(capsys, "model-devi", *argv, "-o", out)
        assert code == 2, (argv, err)
        assert err.startswith("deeppot model-devi: error: ") and "Traceback" not in err
        for piece in pieces:
            assert piece in err, (piece, err)
        assert not out.exists(), argv  # refused before anything is written
