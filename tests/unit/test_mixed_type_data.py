"""DeePMD-kit's mixed-type data (spec section 4): set.*/real_atom_types.npy gives each frame's atom types (-1 for
a virtual atom), type.raw only the number of atoms. Made here from ../shared/data/nopbc_cho with dpdata's
deepmd/npy/mixed writer, as a user would."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import dpdata
import h5py
import numpy as np
import pytest
import torch

from deeppot import keys
from deeppot.commands.neighbor_stat import load_systems
from deeppot.data import DeepmdSystem, iter_frames
from deeppot.data.batching import make_batch
from deeppot.errors import DataError
from deeppot.geometry.neighbor_stat import neighbor_stat
from deeppot.model.statistics import compute_output_bias

NOPBC_CHO = Path(__file__).resolve().parents[2].parent / "shared/data/nopbc_cho"
COMPOSITIONS = ("C1H4O2", "C3H3O4", "C4H3O1")  # 7, 10 and 8 atoms
FRAMES = 6  # frames taken from each composition


def original(name: str) -> dpdata.LabeledSystem:
    return dpdata.LabeledSystem(str(NOPBC_CHO / name), fmt="deepmd/npy").sub_system(range(FRAMES))


@pytest.fixture(scope="module")
def mixed_root(tmp_path_factory) -> Path:
    """dpdata's mixed writer, atom counts padded to multiples of 8: folder 8 holds C1H4O2 (one virtual atom)
    and C4H3O1, folder 16 holds C3H3O4 (six virtual atoms)."""
    root = tmp_path_factory.mktemp("mixed")
    dpdata.MultiSystems(*[original(n) for n in COMPOSITIONS]).to("deepmd/npy/mixed", str(root), atom_numb_pad=8)
    return root


def copy_system(src: Path, dst: Path) -> Path:
    """A writable copy of a system folder (for breaking one of its files)."""
    for path in src.rglob("*"):
        if path.is_file():
            (dst / path.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (dst / path.relative_to(src)).write_bytes(path.read_bytes())
    return dst


def composition(types: np.ndarray, names: list[str]) -> str:
    return "".join(f"{n}{int((types == t).sum())}" for t, n in enumerate(names) if n in "CHO")


def test_load_gives_per_frame_types(mixed_root):
    system = DeepmdSystem.load(mixed_root / "8", None)
    assert system.mixed_type and system.type_names == ["C", "H", "O"]
    assert system.atype.shape == (2 * FRAMES, 8) and system.coord.shape == (2 * FRAMES, 8, 3)
    found = {composition(row, system.type_names): int((row == -1).sum()) for row in system.atype}
    assert found == {"C1H4O2": 1, "C4H3O1": 0}  # two compositions in one system, a virtual atom padding one
    for name in ("C1H4O2", "C4H3O1"):  # each frame's energy and real atoms' forces are those of its composition
        frames = [f for f, row in enumerate(system.atype) if composition(row, system.type_names) == name]
        reference = original(name)
        np.testing.assert_allclose(np.sort(system.energy[frames]), np.sort(reference["energies"]))
        real = system.atype[frames[0]] >= 0
        assert np.all(system.force[frames][:, ~real] == 0.0)  # virtual atoms carry zero labels
    batch = make_batch(system, np.array([FRAMES + 1, 0, 2]))
    np.testing.assert_array_equal(batch[keys.ATYPE], system.atype[[FRAMES + 1, 0, 2]])
    assert not DeepmdSystem.load(NOPBC_CHO / "C1H4O2", None).mixed_type


def test_type_map_remaps_real_types_by_name(mixed_root):
    raw = DeepmdSystem.load(mixed_root / "16", None)
    remapped = DeepmdSystem.load(mixed_root / "16", ["H", "N", "O", "C"], sort_atoms=True)
    assert remapped.type_names == ["H", "N", "O", "C"]
    lookup = np.array([3, 0, 2, -1])  # C -> 3, H -> 0, O -> 2, virtual stays -1
    np.testing.assert_array_equal(remapped.atype, lookup[raw.atype])
    np.testing.assert_array_equal(remapped.coord, raw.coord)  # mixed systems keep the file's atom order
    with pytest.raises(DataError, match=r"type_map\.raw.*\['C'\].*not in the type_map"):
        DeepmdSystem.load(mixed_root / "16", ["H", "O"])


def test_hdf5_group_reads_the_same(mixed_root, tmp_path):
    """The same system as a group of an HDF5 file (deepmd/hdf5 layout: .raw entries as datasets)."""
    folder = mixed_root / "8"
    path = tmp_path / "mixed.h5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("sys")
        group["type.raw"] = np.loadtxt(folder / "type.raw", dtype=np.int64)
        group["type_map.raw"] = np.array((folder / "type_map.raw").read_text().split(), dtype="S")
        group["nopbc"] = True
        for file in (folder / "set.000").glob("*.npy"):
            group[f"set.000/{file.name}"] = np.load(file)
    from_h5 = DeepmdSystem.load(f"{path}#/sys", ["O", "H", "C"])
    from_npy = DeepmdSystem.load(folder, ["O", "H", "C"])
    assert from_h5.mixed_type
    np.testing.assert_array_equal(from_h5.atype, from_npy.atype)
    np.testing.assert_array_equal(from_h5.coord, from_npy.coord)


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda t: t[:, :-1], r"real_atom_types\.npy: has 7 values per frame, expected 8"),
        (lambda t: np.where(t == 2, 3, t), r"real_atom_types\.npy: type 3 of atom \d+ in frame \d+ .*out of range"),
        (lambda t: np.where(t == 2, -2, t), r"real_atom_types\.npy: type -2 of atom"),
        (lambda t: t + 0.5, r"real_atom_types\.npy: holds non-integer values"),
    ],
)
def test_malformed_real_atom_types_names_the_file(mixed_root, tmp_path, content, message):
    root = copy_system(mixed_root / "8", tmp_path / "sys")
    file = root / "set.000" / "real_atom_types.npy"
    np.save(file, content(np.load(file)))
    with pytest.raises(DataError, match=str(root).replace(".", r"\.") + ".*" + message):
        DeepmdSystem.load(root, None)


def test_mixed_and_standard_sets_or_no_type_map(mixed_root, tmp_path):
    root = copy_system(mixed_root / "8", tmp_path / "sys")
    copy_system(root / "set.000", root / "set.001")
    (root / "set.001" / "real_atom_types.npy").unlink()
    with pytest.raises(DataError, match=r"real_atom_types\.npy is in set\.000 but missing in set\.001"):
        DeepmdSystem.load(root, None)
    (root / "set.000" / "real_atom_types.npy").unlink()
    DeepmdSystem.load(root, None)  # all-standard again: loads
    root = copy_system(mixed_root / "8", tmp_path / "no_map")
    (root / "type_map.raw").unlink()
    with pytest.raises(DataError, match=r"type_map\.raw: missing\. A mixed-type system"):
        DeepmdSystem.load(root, None)
    assert DeepmdSystem.load(root, ["C", "H", "O"]).type_names == ["C", "H", "O"]  # the model's type_map names them


def test_output_bias_from_per_frame_compositions(mixed_root):
    """Least squares over per-frame type counts (virtual atoms count for no type) recovers per-type energies."""
    systems = [DeepmdSystem.load(mixed_root / d, ["H", "C", "O"]) for d in ("8", "16")]
    batches = [b for s in systems for b in iter_frames(s, 4)]
    bias = np.array([-13.6, -1029.0, -2041.5])
    for batch in batches:
        batch[keys.ENERGY] = np.stack([(batch[keys.ATYPE] == t).sum(axis=1) for t in range(3)], axis=1) @ bias
    model = SimpleNamespace(ntypes=3, preset_out_bias=None, out_bias=torch.zeros(1, 3, 1, dtype=torch.float64),
                            out_std=torch.ones(1, 3, 1, dtype=torch.float64))
    compute_output_bias(model, batches)
    np.testing.assert_allclose(model.out_bias.numpy().reshape(-1), bias, rtol=1e-9)


def test_neighbor_stat_equals_the_standard_systems(mixed_root):
    """Virtual atoms are nobody's neighbors: the statistics of the mixed folders are those of the originals."""
    standard, names = load_systems(str(NOPBC_CHO), None)
    standard = [first_frames(s, FRAMES) for s in standard]
    mixed, mixed_names = load_systems(str(mixed_root), None)
    assert mixed_names == names and all(s.mixed_type for s in mixed)
    for mixed_types in (False, True):
        expected = neighbor_stat(standard, 3.0, len(names), mixed_types)
        max_nbor, min_dist = neighbor_stat(mixed, 3.0, len(names), mixed_types)
        np.testing.assert_array_equal(max_nbor, expected[0])
        assert min_dist == pytest.approx(expected[1], abs=1e-12)


def first_frames(system: DeepmdSystem, nframes: int) -> SimpleNamespace:
    """The first frames of a standard system, as neighbor_stat reads them."""
    return SimpleNamespace(coord=system.coord[:nframes], box=None, atype=system.atype)
