"""Tests of deeppot.data: system loading and validation, discovery, batch sizes, sampling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from deeppot import keys
from deeppot.data import (
    BatchSampler,
    DeepmdSystem,
    batch_sizes,
    expand_systems,
    iter_frames,
    system_probabilities,
)
from deeppot.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared/data"
WATER_1 = SHARED / "water/data_1"


def write_system(
    root: Path,
    types: list[int],
    frames_per_set: tuple[int, ...] = (3,),
    type_map: list[str] | None = None,
    pbc: bool = True,
    labels: tuple[str, ...] = ("energy", "force", "virial"),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write a synthetic deepmd/npy system; return the full arrays, concatenated over sets."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "type.raw").write_text("\n".join(str(t) for t in types) + "\n")
    if type_map is not None:
        (root / "type_map.raw").write_text("\n".join(type_map) + "\n")
    if not pbc:
        (root / "nopbc").write_text("")
    natoms = len(types)
    full: dict[str, list[np.ndarray]] = {}
    for iset, nf in enumerate(frames_per_set):
        arrays = {
            "coord": rng.uniform(0, 5, (nf, natoms * 3)),
            "box": np.tile((5.0 * np.eye(3)).ravel(), (nf, 1)) + rng.uniform(0, 0.1, (nf, 9)),
            "energy": rng.normal(size=nf),
            "force": rng.normal(size=(nf, natoms * 3)),
            "virial": rng.normal(size=(nf, 9)),
        }
        set_dir = root / f"set.{iset:03d}"
        set_dir.mkdir()
        for name, arr in arrays.items():
            if name in ("coord", "box") and (pbc or name == "coord") or name in labels:
                np.save(set_dir / f"{name}.npy", arr)
                full.setdefault(name, []).append(arr)
    return {k: np.concatenate(v) for k, v in full.items()}


# ---------------------------------------------------------------- loading


def test_load_shapes_and_values(tmp_path):
    ref = write_system(tmp_path / "sys", [0, 1, 1], frames_per_set=(4,))
    sys = DeepmdSystem.load(tmp_path / "sys", None)
    assert (sys.natoms, sys.nframes, sys.pbc) == (3, 4, True)
    assert sys.coord.shape == (4, 3, 3) and sys.coord.dtype == np.float64
    assert sys.box.shape == (4, 3, 3)
    assert sys.energy.shape == (4,)
    assert sys.force.shape == (4, 3, 3)
    assert sys.virial.shape == (4, 9)
    assert sys.fparam is None and sys.aparam is None
    assert sys.atype.dtype == np.int64 and sys.atype.tolist() == [0, 1, 1]
    assert sys.type_names == ["type_0", "type_1"]
    np.testing.assert_array_equal(sys.coord.reshape(4, -1), ref["coord"])
    np.testing.assert_array_equal(sys.force.reshape(4, -1), ref["force"])
    np.testing.assert_array_equal(sys.box.reshape(4, -1), ref["box"])
    assert sys.has(keys.ENERGY) and sys.has(keys.BOX) and not sys.has(keys.FPARAM)


def test_sets_are_concatenated_in_order(tmp_path):
    ref = write_system(tmp_path / "sys", [0, 0], frames_per_set=(2, 3, 1))
    sys = DeepmdSystem.load(tmp_path / "sys", None)
    assert sys.nframes == 6
    np.testing.assert_array_equal(sys.energy, ref["energy"])
    np.testing.assert_array_equal(sys.virial, ref["virial"])


def test_missing_label_everywhere_is_absent(tmp_path):
    write_system(tmp_path / "sys", [0], labels=("energy",))
    sys = DeepmdSystem.load(tmp_path / "sys", None)
    assert sys.has(keys.ENERGY) and not sys.has(keys.FORCE) and not sys.has(keys.VIRIAL)


def test_single_frame_1d_arrays(tmp_path):
    root = tmp_path / "sys"
    write_system(root, [0, 1], frames_per_set=(1,))
    for name in ("coord", "force", "box", "virial"):
        np.save(root / f"set.000/{name}.npy", np.load(root / f"set.000/{name}.npy")[0])
    sys = DeepmdSystem.load(root, None)
    assert sys.nframes == 1 and sys.force.shape == (1, 2, 3)


def test_real_water_two_sets():
    sys = DeepmdSystem.load(WATER_1, ["O", "H"])
    first = np.load(WATER_1 / "set.000/energy.npy")
    second = np.load(WATER_1 / "set.001/energy.npy")
    assert (sys.nframes, sys.natoms) == (len(first) + len(second), 192)
    np.testing.assert_allclose(sys.energy, np.concatenate([first, second]).astype(np.float64))
    assert sys.box.shape == (sys.nframes, 3, 3) and sys.virial is None
    assert (sys.atype == 0).sum() == 64 and (sys.atype == 1).sum() == 128


def test_type_remap_by_name(tmp_path):
    # system types: 0 = H, 1 = C; model type_map ["C", "H"]
    write_system(tmp_path / "sys", [0, 1, 0, 0], type_map=["H", "C"])
    sys = DeepmdSystem.load(tmp_path / "sys", ["C", "H"])
    assert sys.atype.tolist() == [1, 0, 1, 1]
    assert sys.type_names == ["C", "H"]
    # without a model type_map the raw indices are kept, named by type_map.raw
    raw = DeepmdSystem.load(tmp_path / "sys", None)
    assert raw.atype.tolist() == [0, 1, 0, 0] and raw.type_names == ["H", "C"]


def test_sort_atoms_stable_and_mappable(tmp_path):
    ref = write_system(tmp_path / "sys", [1, 0, 1, 0, 0])
    sys = DeepmdSystem.load(tmp_path / "sys", None, sort_atoms=True)
    assert sys.atom_order.tolist() == [1, 3, 4, 0, 2]
    assert sys.atype.tolist() == [0, 0, 0, 1, 1]
    coord = ref["coord"].reshape(-1, 5, 3)
    np.testing.assert_array_equal(sys.coord, coord[:, [1, 3, 4, 0, 2]])
    np.testing.assert_array_equal(sys.to_file_order(sys.coord), coord)
    np.testing.assert_array_equal(
        sys.to_file_order(sys.force), ref["force"].reshape(-1, 5, 3)
    )
    unsorted = DeepmdSystem.load(tmp_path / "sys", None)
    assert unsorted.atom_order.tolist() == [0, 1, 2, 3, 4]


def test_nopbc(tmp_path):
    write_system(tmp_path / "mol", [0, 1], pbc=False)
    sys = DeepmdSystem.load(tmp_path / "mol", None)
    assert sys.pbc is False and sys.box is None and not sys.has(keys.BOX)


def test_real_nopbc_molecule():
    sys = DeepmdSystem.load(SHARED / "nopbc_cho/C1H4O2", ["C", "H", "O"])
    assert not sys.pbc and sys.box is None
    assert sorted(sys.atype.tolist()) == [0, 1, 1, 1, 1, 2, 2]


def test_fparam_aparam(tmp_path):
    root = tmp_path / "sys"
    write_system(root, [0, 0, 0], frames_per_set=(2, 2))
    for iset in range(2):
        np.save(root / f"set.{iset:03d}/fparam.npy", np.full((2, 2), iset, dtype=np.float32))
        # DeePMD-kit accepts any shape of the right size, e.g. (1, nf * N * nap)
        np.save(root / f"set.{iset:03d}/aparam.npy", np.arange(12.0).reshape(1, 12))
    sys = DeepmdSystem.load(root, None, numb_fparam=2, numb_aparam=2)
    assert sys.fparam.shape == (4, 2) and sys.fparam[2, 0] == 1.0
    assert sys.aparam.shape == (4, 3, 2)
    np.testing.assert_array_equal(sys.aparam[1], np.arange(6.0, 12.0).reshape(3, 2))
    assert DeepmdSystem.load(root, None).fparam is None


def test_real_fparam_system():
    sys = DeepmdSystem.load(SHARED / "fparam_be/e3000_i2000", None, numb_fparam=1, numb_aparam=1)
    assert sys.fparam.shape == (sys.nframes, 1)
    assert sys.aparam.shape == (sys.nframes, sys.natoms, 1)


# ---------------------------------------------------------------- validation errors


def _error(path, type_map=None, **kw) -> str:
    with pytest.raises(DataError) as info:
        DeepmdSystem.load(path, type_map, **kw)
    return str(info.value)


def test_error_folder_missing(tmp_path):
    assert "nowhere" in _error(tmp_path / "nowhere")


def test_error_type_raw_missing(tmp_path):
    (tmp_path / "sys").mkdir()
    assert "type.raw" in _error(tmp_path / "sys")


def test_error_type_raw_not_integers(tmp_path):
    write_system(tmp_path / "sys", [0, 1])
    (tmp_path / "sys/type.raw").write_text("O H\n")
    msg = _error(tmp_path / "sys")
    assert "type.raw" in msg and "'O'" in msg and "type_map.raw" in msg


def test_error_element_not_in_model_type_map(tmp_path):
    write_system(tmp_path / "sys", [0, 1, 2], type_map=["H", "C", "N"])
    msg = _error(tmp_path / "sys", ["C", "H", "O"])
    assert "type_map.raw" in msg and "['N']" in msg and "['C', 'H', 'O']" in msg


def test_error_type_out_of_range_of_type_map_raw(tmp_path):
    write_system(tmp_path / "sys", [0, 2], type_map=["H", "C"])
    msg = _error(tmp_path / "sys", ["H", "C"])
    assert "type.raw" in msg and "type_map.raw" in msg


def test_error_no_set(tmp_path):
    (tmp_path / "sys").mkdir()
    (tmp_path / "sys/type.raw").write_text("0\n")
    assert "set.*" in _error(tmp_path / "sys")


def test_error_coord_missing(tmp_path):
    write_system(tmp_path / "sys", [0, 1])
    (tmp_path / "sys/set.000/coord.npy").unlink()
    assert "set.000/coord.npy" in _error(tmp_path / "sys")


def test_error_wrong_values_per_frame(tmp_path):
    root = tmp_path / "sys"
    write_system(root, [0] * 4, frames_per_set=(5,))
    np.save(root / "set.000/force.npy", np.zeros((5, 11)))
    msg = _error(root)
    assert "set.000/force.npy" in msg
    assert "11 values per frame, expected 12 = 3 x 4 atoms" in msg


def test_error_frame_count_differs(tmp_path):
    root = tmp_path / "sys"
    write_system(root, [0, 1], frames_per_set=(5,))
    np.save(root / "set.000/energy.npy", np.zeros(4))
    msg = _error(root)
    assert "set.000/energy.npy" in msg and "4 frames" in msg and "5" in msg


def test_error_box_missing_periodic(tmp_path):
    write_system(tmp_path / "sys", [0, 1])
    (tmp_path / "sys/set.000/box.npy").unlink()
    msg = _error(tmp_path / "sys")
    assert "box.npy" in msg and "nopbc" in msg


def test_error_singular_box(tmp_path):
    root = tmp_path / "sys"
    write_system(root, [0, 1], frames_per_set=(3,))
    box = np.load(root / "set.000/box.npy")
    box[2] = [1, 0, 0, 2, 0, 0, 0, 0, 1]
    np.save(root / "set.000/box.npy", box)
    msg = _error(root)
    assert "set.000/box.npy" in msg and "frame 2" in msg and "singular" in msg


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_error_non_finite(tmp_path, bad):
    root = tmp_path / "sys"
    write_system(root, [0, 1], frames_per_set=(2, 4))
    force = np.load(root / "set.001/force.npy")
    force[3, 1] = bad
    np.save(root / "set.001/force.npy", force)
    msg = _error(root)
    assert "set.001/force.npy" in msg and "frame 3" in msg


def test_error_label_in_some_sets_only(tmp_path):
    root = tmp_path / "sys"
    write_system(root, [0, 1], frames_per_set=(2, 2))
    (root / "set.001/virial.npy").unlink()
    msg = _error(root)
    assert "virial.npy" in msg and "set.001" in msg


def test_error_fparam_required(tmp_path):
    write_system(tmp_path / "sys", [0, 1])
    msg = _error(tmp_path / "sys", numb_fparam=2)
    assert "fparam.npy" in msg and "numb_fparam = 2" in msg


def test_error_aparam_required(tmp_path):
    write_system(tmp_path / "sys", [0, 1])
    assert "aparam.npy" in _error(tmp_path / "sys", numb_aparam=1)


# ---------------------------------------------------------------- discovery


def test_expand_systems_search_and_list(tmp_path):
    for name in ("b/sys2", "a/sys1", "a/sys1/nested"):
        write_system(tmp_path / "data" / name, [0])
    found = expand_systems("data", base=tmp_path)
    assert found == sorted(found) and len(found) == 3
    assert found[0].endswith("a/sys1")
    given = expand_systems(["data/b/sys2", "data/a/sys1"], base=tmp_path)
    assert [Path(p).name for p in given] == ["sys2", "sys1"]


def test_expand_real_water():
    found = expand_systems(str(SHARED / "water"))
    assert [Path(p).name for p in found] == ["data_0", "data_1", "data_2", "data_3"]


def test_expand_systems_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        expand_systems("empty", base=tmp_path)
    with pytest.raises(DataError, match="missing_sys"):
        expand_systems(["missing_sys"], base=tmp_path)


# ---------------------------------------------------------------- batch sizes and probabilities


def test_batch_size_rules():
    assert batch_sizes("auto", [192]) == [1]
    assert batch_sizes("auto:512", [192]) == [3]
    assert batch_sizes("auto", [5, 32, 33]) == [7, 1, 1]
    assert batch_sizes(4, [5, 7]) == [4, 4]
    assert batch_sizes([2, 3], [5, 7]) == [2, 3]
    assert batch_sizes("max:100", [30, 200]) == [3, 1]
    assert batch_sizes("filter:100", [30, 200]) == [3, None]


@pytest.mark.parametrize("rule", [[1], "auto:x", "min:3", 0, "filter:", True])
def test_batch_size_bad_rules(rule):
    with pytest.raises(ConfigError, match="batch_size"):
        batch_sizes(rule, [5, 7])


def test_probabilities():
    nb = [1, 3, 4]
    np.testing.assert_allclose(system_probabilities(nb), [0.125, 0.375, 0.5])
    np.testing.assert_allclose(system_probabilities(nb, "prob_uniform"), [1 / 3] * 3)
    np.testing.assert_allclose(
        system_probabilities(nb, "prob_sys_size;0:1:0.25;1:3:0.75"),
        [0.25, 0.75 * 3 / 7, 0.75 * 4 / 7],
    )
    # block weights are normalised
    np.testing.assert_allclose(
        system_probabilities(nb, "prob_sys_size;0:1:1;1:3:3"),
        [0.25, 0.75 * 3 / 7, 0.75 * 4 / 7],
    )
    np.testing.assert_allclose(
        system_probabilities(nb, sys_probs=[0.5, -1, -1]), [0.5, 0.5 * 3 / 7, 0.5 * 4 / 7]
    )
    np.testing.assert_allclose(system_probabilities(nb, sys_probs=[0.2, 0.3, 0.5]), [0.2, 0.3, 0.5])
    with pytest.raises(ConfigError):
        system_probabilities(nb, sys_probs=[0.9, 0.9, -1])
    with pytest.raises(ConfigError):
        system_probabilities(nb, "prob_fancy")


# ---------------------------------------------------------------- sampling


@pytest.fixture
def two_systems(tmp_path):
    write_system(tmp_path / "s0", [0, 1, 1], frames_per_set=(5,), seed=1)
    write_system(tmp_path / "s1", [1, 0], frames_per_set=(3, 4), seed=2, labels=("energy",))
    return [DeepmdSystem.load(tmp_path / n, None) for n in ("s0", "s1")]


def _signature(batch: dict) -> tuple:
    return batch["system_index"], tuple(batch["frame_index"].tolist())


def test_batch_contents(two_systems):
    sampler = BatchSampler(two_systems, [2, 3], [0.5, 0.5], seed=7)
    seen = set()
    for _ in range(20):
        batch = sampler.next_batch()
        sys = two_systems[batch["system_index"]]
        frames = batch["frame_index"]
        bs = len(frames)
        seen.add(batch["system_index"])
        assert batch["natoms"] == sys.natoms
        assert batch[keys.COORD].shape == (bs, sys.natoms, 3)
        np.testing.assert_array_equal(batch[keys.COORD], sys.coord[frames])
        assert batch[keys.BOX].shape == (bs, 3, 3)
        assert batch[keys.ATYPE].shape == (bs, sys.natoms) and batch[keys.ATYPE].dtype == np.int64
        np.testing.assert_array_equal(batch[keys.ENERGY], sys.energy[frames])
        assert batch[keys.find_key(keys.ENERGY)] == 1.0
        has_force = batch["system_index"] == 0
        assert batch[keys.find_key(keys.FORCE)] == float(has_force)
        assert (keys.FORCE in batch) == has_force
    assert seen == {0, 1}


def test_epoch_covers_every_frame_with_smaller_last_batch(two_systems):
    sampler = BatchSampler(two_systems, [2, 3], [1.0, 0.0], seed=3)
    epoch = [sampler.next_batch()["frame_index"].tolist() for _ in range(3)]
    assert [len(b) for b in epoch] == [2, 2, 1]
    assert sorted(sum(epoch, [])) == [0, 1, 2, 3, 4]
    # the next epoch reshuffles and starts a full batch
    assert len(sampler.next_batch()["frame_index"]) == 2


def test_sampler_reproducible(two_systems):
    a = BatchSampler(two_systems, [2, 3], [0.4, 0.6], seed=11)
    b = BatchSampler(two_systems, [2, 3], [0.4, 0.6], seed=11)
    c = BatchSampler(two_systems, [2, 3], [0.4, 0.6], seed=12)
    seq_a = [_signature(a.next_batch()) for _ in range(30)]
    seq_b = [_signature(b.next_batch()) for _ in range(30)]
    seq_c = [_signature(c.next_batch()) for _ in range(30)]
    assert seq_a == seq_b
    assert seq_a != seq_c


def test_sampler_state_restore(two_systems):
    reference = BatchSampler(two_systems, [2, 3], [0.4, 0.6], seed=5)
    full = [_signature(reference.next_batch()) for _ in range(25)]

    first = BatchSampler(two_systems, [2, 3], [0.4, 0.6], seed=5)
    head = [_signature(first.next_batch()) for _ in range(8)]
    state = first.state_dict()
    assert all(p is None or isinstance(p, list) for p in state["perms"])
    # split inside an epoch, so the saved permutations matter, not only the generator
    assert any(0 < c < n for c, n in zip(state["cursors"], state["nframes"]))
    resumed = BatchSampler(two_systems, [2, 3], [0.4, 0.6], seed=999)
    resumed.load_state_dict(state)
    tail = [_signature(resumed.next_batch()) for _ in range(17)]
    assert head + tail == full


def test_state_from_other_data_rejected(two_systems):
    state = BatchSampler(two_systems, [2, 3], [0.5, 0.5], seed=0).state_dict()
    swapped = BatchSampler(two_systems[::-1], [3, 2], [0.5, 0.5], seed=0)
    with pytest.raises(DataError):
        swapped.load_state_dict(state)


def test_iter_frames_in_order(two_systems):
    sys = two_systems[1]
    batches = list(iter_frames(sys, 3))
    assert [b["frame_index"].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    np.testing.assert_array_equal(np.concatenate([b[keys.ENERGY] for b in batches]), sys.energy)
    assert math.isclose(batches[0][keys.find_key(keys.VIRIAL)], 0.0)
