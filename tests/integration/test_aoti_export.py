"""The AOTInductor package in a frozen file (deeppot.export.aoti) gives what eager forward_lower gives, on
water frames with other nloc, nall and nnei than it was traced with, and on scrambled MD-engine lists.

One compilation for the module (a small model that takes fparam and aparam, so that those inputs are
covered too): about 1-2 minutes on the 2-core development machine.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "physics"))
from deeppot_test_models import load_water, make_model  # noqa: E402
from test_forward_lower import build_blocked_nlist, engine_nlist, extend_with_ghosts  # noqa: E402

from deeppot.errors import ModelFileError  # noqa: E402
from deeppot.export import aoti  # noqa: E402
from deeppot.export.model_file import save_model_file  # noqa: E402
from deeppot.model.nlist_format import EngineInputError  # noqa: E402

ATOL = 1e-10


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """(eager model, loaded package, frozen file path)."""
    model = make_model(rcut=4.0, rcut_smth=0.5, sel=(20, 40), numb_fparam=2, numb_aparam=1, seed=3)
    path = tmp_path_factory.mktemp("aoti") / "model.pth"
    save_model_file(model, {"type_map": model.type_map}, path, aoti=True)
    return model, aoti.load_frozen_package(path), path


def params(model, nloc, seed):
    gen = np.random.default_rng(seed)
    return (torch.from_numpy(gen.random((1, model.fitting.numb_fparam))),
            torch.from_numpy(gen.random((1, nloc, model.fitting.numb_aparam))))


def assert_package_matches_eager(model, runner, ext, ext_atype, nlist):
    nloc = nlist.shape[0]
    inputs = (torch.from_numpy(ext)[None], torch.from_numpy(ext_atype)[None], torch.from_numpy(nlist)[None],
              *params(model, nloc, seed=nloc))
    expected = aoti.eager_outputs(model, inputs)
    got = aoti.as_dict(runner(*inputs))
    shapes = {"energy": (1, 1), "atom_energy": (1, nloc, 1), "extended_force": (1, len(ext), 3),
              "virial": (1, 9), "extended_virial": (1, len(ext), 9)}
    for name, want in zip(aoti.OUTPUT_NAMES, expected):
        assert got[name].shape == shapes[name] == want.shape, name
        torch.testing.assert_close(got[name], want, rtol=0.0, atol=ATOL, msg=name)
    return got


def test_water_frames_other_sizes(frozen):
    """Two periodic water frames (nloc 192, different ghosts and list widths) and a 40-atom cluster cut
    out of one: three (nloc, nall, nnei) none of which the package was traced with."""
    model, runner, _ = frozen
    coord, atype, box = load_water(2)
    sizes = set()
    for frame, skin, width in ((0, 0.0, (40, 80)), (1, 0.7, (45, 95))):
        ext, ext_atype, _, _ = extend_with_ghosts(coord[frame], atype, box[frame], model.rcut + skin)
        nlist = build_blocked_nlist(ext, ext_atype, len(atype), model.rcut, width, skin=skin)
        got = assert_package_matches_eager(model, runner, ext, ext_atype, nlist)
        assert float(got["extended_force"].abs().max()) > 1e-3  # a real system, not padding
        sizes.add((len(atype), len(ext), nlist.shape[1]))
    cluster = np.argsort(np.linalg.norm(coord[0] - coord[0][0], axis=1))[:40]
    ext, ext_atype = coord[0][cluster].astype(np.float64), atype[cluster]
    nlist = build_blocked_nlist(ext, ext_atype, 40, model.rcut, model.sel)
    assert_package_matches_eager(model, runner, ext, ext_atype, nlist)
    sizes.add((40, 40, nlist.shape[1]))
    assert len(sizes) == 3


def test_scrambled_wide_list(frozen):
    """An MD engine's list: random order across types, -1 at random places, wider than sum(sel), out to
    rcut + 2 Angstrom; the virial from the extended forces agrees with the package's virial."""
    model, runner, _ = frozen
    coord, atype, box = load_water(1)
    ext, ext_atype, _, _ = extend_with_ghosts(coord[0], atype, box[0], model.rcut + 2.0)
    nlist = engine_nlist(ext, len(atype), model.rcut + 2.0, np.random.default_rng(4), width=2 * sum(model.sel))
    assert nlist.shape[1] > sum(model.sel)
    got = assert_package_matches_eager(model, runner, ext, ext_atype, nlist)
    virial = torch.einsum("ja,jb->ab", got["extended_force"][0], torch.from_numpy(ext)).reshape(1, 9)
    torch.testing.assert_close(virial, got["virial"], rtol=0.0, atol=ATOL)


def test_single_atom(frozen):
    """nloc = nall = nnei = 1 (an MPI rank may own one atom): the atom's energy and zero force."""
    model, runner, _ = frozen
    got = assert_package_matches_eager(model, runner, np.zeros((1, 3)), np.array([1]), -np.ones((1, 1), np.int64))
    assert float(got["extended_force"].abs().max()) == 0.0


def test_bad_input_stops(frozen):
    """An index past the extended atoms fails the package's run-time check instead of giving a number;
    float32 coordinates (which the compiled code would misread) are refused before it runs."""
    model, runner, _ = frozen
    coord, atype, box = load_water(1)
    ext, ext_atype, _, _ = extend_with_ghosts(coord[0], atype, box[0], model.rcut)
    nlist = build_blocked_nlist(ext, ext_atype, len(atype), model.rcut, model.sel)
    params_ = params(model, len(atype), seed=0)
    bad = nlist.copy()
    bad[5, 0] = len(ext) + 3
    with pytest.raises(RuntimeError, match="cannot be treated right"):
        runner(torch.from_numpy(ext)[None], torch.from_numpy(ext_atype)[None], torch.from_numpy(bad)[None], *params_)
    with pytest.raises(EngineInputError, match="extended_coord must be torch.float64"):
        runner(torch.from_numpy(ext).float()[None], torch.from_numpy(ext_atype)[None], torch.from_numpy(nlist)[None],
               *params_)


def test_file_without_package(frozen, tmp_path):
    model, _, path = frozen
    assert aoti.read_package(path)[:2] == b"PK"  # the .pt2 is itself a zip
    plain = tmp_path / "plain.pth"
    save_model_file(model, {"type_map": model.type_map}, plain)
    assert aoti.read_package(plain) is None
    with pytest.raises(ModelFileError, match="no compiled package"):
        aoti.load_frozen_package(plain)
