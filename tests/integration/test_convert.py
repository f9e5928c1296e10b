"""``deeppot convert``: DFT output read with dpdata, split into training and validation data."""

from __future__ import annotations

from pathlib import Path

import dpdata
import numpy as np
import pytest

from deeppot.cli import main
from deeppot.data import DeepmdSystem, expand_systems
from deeppot.data.convert import convert, split_indices
from deeppot.errors import DataError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
OUTCARS = [DATA / "ch4_vasp" / f"00000{i}" / "OUTCAR" for i in range(3)]  # 10 frames each
TYPE_MAP = ["H", "C"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def reference():
    """Energies (eV) of the 30 input frames, read directly with dpdata."""
    return np.concatenate([dpdata.LabeledSystem(str(p), fmt="vasp/outcar")["energies"] for p in OUTCARS])


def test_cli_convert_split_counts_and_content(tmp_path, capsys, reference):
    out = tmp_path / "ch4_data"
    code, stdout, _ = run_cli(capsys, "convert", *OUTCARS, "-o", out, "--fmt", "vasp/outcar",
                              "--valid-fraction", "0.2", "--seed", "1")
    assert code == 0
    assert f"training_data: 24 frames -> {out / 'training_data'}" in stdout
    assert f"validation_data: 6 frames -> {out / 'validation_data'}" in stdout
    train = DeepmdSystem.load(out / "training_data", TYPE_MAP)
    valid = DeepmdSystem.load(out / "validation_data", TYPE_MAP)
    assert (train.nframes, valid.nframes) == (24, 6)
    assert train.natoms == 5 and train.type_names == TYPE_MAP and train.has("virial")
    np.testing.assert_array_equal(np.bincount(train.atype), [4, 1])
    # every frame lands exactly once, in the order given by the seeded permutation
    expected_train, expected_valid = split_indices(30, 0.2, np.random.default_rng(1))
    np.testing.assert_array_equal(train.energy, reference[expected_train])
    np.testing.assert_array_equal(valid.energy, reference[expected_valid])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_split_is_deterministic_with_seed(tmp_path):
    def energies(name, seed):
        convert(OUTCARS, tmp_path / name, fmt="vasp/outcar", valid_fraction=0.2, seed=seed)
        return DeepmdSystem.load(tmp_path / name / "validation_data", TYPE_MAP).energy

    first, again, other = energies("a", 1), energies("b", 1), energies("c", 7)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_valid_fraction_zero_writes_training_only(tmp_path, reference):
    result = convert(OUTCARS, tmp_path / "out", fmt="vasp/outcar")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["training_data"]
    assert result.frames == {"training_data": {"H4C1": 30}}
    assert "validation_data: 0 frames (not written)" in result.summary()
    np.testing.assert_array_equal(DeepmdSystem.load(tmp_path / "out" / "training_data", TYPE_MAP).energy, reference)


def test_hdf5_output_equals_npy_output(tmp_path):
    convert(OUTCARS, tmp_path / "npy", fmt="vasp/outcar", valid_fraction=0.2, seed=3)
    convert(OUTCARS, tmp_path / "h5", fmt="vasp/outcar", to="deepmd/hdf5", valid_fraction=0.2, seed=3)
    assert sorted(p.name for p in (tmp_path / "h5").iterdir()) == ["training_data.h5", "validation_data.h5"]
    for subset in ("training_data", "validation_data"):
        [group] = expand_systems(str(tmp_path / "h5" / f"{subset}.h5"))
        assert group.endswith(f"{subset}.h5#/H4C1")
        a = DeepmdSystem.load(tmp_path / "npy" / subset, TYPE_MAP)
        b = DeepmdSystem.load(group, TYPE_MAP)
        for name in ("coord", "box", "energy", "force", "virial", "atype"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_several_compositions_one_folder_per_formula(tmp_path):
    water = DATA / "h2o_vasp_single" / "OUTCAR"  # one frame of 2 H2O
    result = convert([*OUTCARS[:2], water], tmp_path / "out", valid_fraction=0.2, seed=0)
    assert result.frames["training_data"] == {"H4C1O0": 16, "H4C0O2": 1}
    assert result.frames["validation_data"] == {"H4C1O0": 4}  # round(0.2 * 1) = 0 water frames
    found = expand_systems(str(tmp_path / "out"))
    assert [str(Path(p).relative_to(tmp_path / "out")) for p in found] == [
        "training_data/H4C0O2", "training_data/H4C1O0", "validation_data/H4C1O0"]
    water_system = DeepmdSystem.load(found[0], ["H", "C", "O"])
    np.testing.assert_array_equal(np.bincount(water_system.atype, minlength=3), [4, 0, 2])


def test_unreadable_file_named_and_nothing_written(tmp_path, capsys):
    bad = tmp_path / "OUTCAR"
    bad.write_text("this is not a VASP OUTCAR\n")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "convert", OUTCARS[0], bad, "-o", out, "--fmt", "vasp/outcar")
    assert code != 0
    assert f"deeppot convert: error: {bad}: dpdata cannot read it as 'vasp/outcar'" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["OUTCAR"]


def test_outcar_without_finished_step_named(tmp_path):
    truncated = tmp_path / "truncated" / "OUTCAR"
    truncated.parent.mkdir()
    truncated.write_bytes(OUTCARS[0].read_bytes()[:20000])  # stops before the first TOTAL-FORCE block
    with pytest.raises(DataError, match="no labeled frame") as info:
        convert([OUTCARS[0], truncated], tmp_path / "out", fmt="vasp/outcar")
    assert str(truncated) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truncated"]


def test_existing_output_refused_unless_force(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old_file").write_text("keep me")
    code, _, err = run_cli(capsys, "convert", OUTCARS[0], "-o", out)
    assert code != 0 and "already exists" in err and "--force" in err
    assert (out / "old_file").read_text() == "keep me"
    code, stdout, _ = run_cli(capsys, "convert", OUTCARS[0], "-o", out, "--force")
    assert code == 0 and "training_data: 10 frames" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["training_data"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_bad_options(tmp_path, capsys):
    code, _, err = run_cli(capsys, "convert", OUTCARS[0], "-o", tmp_path / "out", "--fmt", "vasp/outcr")
    assert code != 0 and "did you mean 'vasp/outcar'" in err.lower()
    code, _, err = run_cli(capsys, "convert", OUTCARS[0], "-o", tmp_path / "out", "--valid-fraction", "1")
    assert code != 0 and "--valid-fraction" in err
    missing = tmp_path / "nothing" / "OUTCAR"
    code, _, err = run_cli(capsys, "convert", missing, "-o", tmp_path / "out")
    assert code != 0 and f"{missing}: file not found" in err
    assert not (tmp_path / "out").exists()
