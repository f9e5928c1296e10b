"""The AOTInductor package in a frozen file (deeppot.export.aoti) gives what eager forward_lower gives, on
water frames with other nloc, nall and nnei than it was traced with, and on scrambled MD-engine lists.

One compilation for the module (a small model that takes fparam and aparam, so that those inputs are
covered too): about 1-2 minutes on the 2-core development machine. Every other descriptor goes through the
same capture (make_fx + torch.export, the step that depends on the descriptor's code; 10-30 s each), here or
in test_compress.py (compressed), and its exported graph is compared with eager forward_lower; the C++
compilation of the captured graph does not depend on the descriptor (``benchmarks/bench_frozen_formats.py
--descriptor NAME`` compiles and checks each).
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


# ----------------------------------------------------------------- every descriptor through the capture
LOC_FRAME = {"sel_a": [4, 8], "sel_r": [8, 12], "axis_rule": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]}
ATTENTION = {"tebd_dim": 4, "attn": 8, "attn_layer": 1}
# the descriptors whose lower entry point has code of its own: se_e2_r, se_e3 and hybrid are captured (compressed,
# as members of one hybrid) in test_compress.py::test_compressed_model_is_captured_for_aotinductor; se_e2_a with
# a type embedding runs se_e2_a's operations on all slots (no data-dependent width) and is left out (20-50 s)
EXPORT_CASES = {
    "loc_frame": {"descriptor": "loc_frame", "descriptor_options": LOC_FRAME},
    # mixed-type slots (sel = [nsel]), attention, type embedding in the embedding input
    "se_atten": {"descriptor": "se_atten", "sel": (30,), "descriptor_options": ATTENTION},
}


@pytest.mark.parametrize("case", sorted(EXPORT_CASES))
def test_each_descriptor_exports(case):
    """The captured lower entry point of a model of each descriptor equals eager forward_lower on a water frame
    with a scrambled wide engine list and on a random system, sizes other than traced."""
    options = {"rcut": 4.0, "rcut_smth": 0.5, "sel": (12, 20), "neuron": (4, 8), "fitting_neuron": (8, 8), "seed": 7}
    model = make_model(**{**options, **EXPORT_CASES[case]})
    program = aoti.export_lower(model)
    coord, atype, box = load_water(1)
    ext, ext_atype, _, _ = extend_with_ghosts(coord[0], atype, box[0], model.rcut + 1.0)
    nlist = engine_nlist(ext, len(atype), model.rcut + 1.0, np.random.default_rng(2), width=sum(model.sel) + 90)
    systems = [(torch.from_numpy(ext)[None], torch.from_numpy(ext_atype)[None], torch.from_numpy(nlist)[None]),
               aoti.example_inputs(model, nloc=9, nall=30, nnei=27, seed=9)]
    for inputs in systems:
        expected = aoti.eager_outputs(model, inputs)
        for name, got, want in zip(aoti.OUTPUT_NAMES, program.module()(*inputs), expected):
            torch.testing.assert_close(got, want, rtol=0.0, atol=ATOL, msg=name)
    assert float(expected[2].abs().max()) > 1e-3
