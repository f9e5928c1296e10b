"""float32 and mixed-precision models through the physics checks at their precision's tolerance: forces and
virial are -dE/dr and the strain derivative (float32), mixed-precision forces are the float32 model's to the
compute precision's resolution, outputs stay float64, and TorchScript keeps the casts."""

import warnings

import numpy as np
import pytest
import torch

from deeppot.export.model_file import FrozenEnergyModel
from deeppot.model import deserialize_model
from deeppot.nn.precision import enable_mixed_precision
from deeppot_test_models import evaluate, make_model, periodic_frame
from physics_checks import check_forces_fd, check_virial_fd
from test_forward_lower import build_blocked_nlist, extend_with_ghosts


def _with_precision(node, precision: str):
    """A serialized model dict with every ``precision`` key set to ``precision``."""
    if isinstance(node, dict):
        return {k: precision if k == "precision" else _with_precision(v, precision) for k, v in node.items()}
    if isinstance(node, list):
        return [_with_precision(v, precision) for v in node]
    return node


@pytest.fixture(scope="module")
def float32_dict():
    return _with_precision(make_model(seed=2, fitting_input_scale=3.0).serialize(), "float32")


def mixed_model(data, compute_prec):
    model = deserialize_model(data)
    enable_mixed_precision(model, {"output_prec": "float32", "compute_prec": compute_prec})
    return model


def test_float32_forces_and_virial_are_derivatives_of_the_energy(float32_dict):
    model = deserialize_model(float32_dict)
    assert model.descriptor.embeddings[0].layers[0].w.dtype == torch.float32
    coord, atype, box = periodic_frame(12, seed=3)
    out = evaluate(model, coord, atype, box)
    assert all(out[k].dtype == np.float64 for k in ("energy", "force", "virial"))  # sums and derivatives float64
    # float32 rounding of ~1e-7 relative in E: a step of 1e-2 A keeps the difference quotient's noise below 1e-4
    check_forces_fd(model, coord, atype, box, h=1e-2, rtol=5e-3)
    check_virial_fd(model, coord, atype, box, h=1e-2, rtol=5e-3)


@pytest.mark.parametrize("compute_prec, rtol", [("bfloat16", 4e-2), ("float16", 1e-2)])
def test_mixed_precision_forces_are_the_float32_models_to_compute_resolution(float32_dict, compute_prec, rtol):
    """The mixed model's energy is piecewise constant at the compute precision's resolution, so finite
    differences do not apply to it; its autograd forces are those of the same float32 weights (which pass the
    finite-difference check above) to the compute precision's relative resolution."""
    reference = deserialize_model(float32_dict)
    model = mixed_model(float32_dict, compute_prec)
    coord, atype, box = periodic_frame(12, seed=3)
    out, ref = evaluate(model, coord, atype, box), evaluate(reference, coord, atype, box)
    assert out["force"].dtype == np.float64
    scale = np.abs(ref["force"]).max()
    assert scale > 1e-3
    error = np.abs(out["force"] - ref["force"]).max()
    assert 0 < error <= rtol * scale, (error, scale)  # > 0: the casts are really there
    np.testing.assert_allclose(out["virial"], ref["virial"], atol=rtol * np.abs(ref["virial"]).max())
    assert abs(out["energy"] - ref["energy"]) <= rtol * np.abs(ref["atom_energy"]).sum()


def test_scripted_md_entry_point_keeps_the_mixed_casts(float32_dict):
    """What LAMMPS runs (the scripted forward_lower of a frozen file) computes as the eager mixed model."""
    model = mixed_model(float32_dict, "bfloat16")
    coord, atype, box = periodic_frame(12, seed=3)
    ext, ext_atype, mapping, _ = extend_with_ghosts(coord, atype, box, model.rcut)
    nlist = build_blocked_nlist(ext, ext_atype, len(atype), model.rcut, model.sel)
    args = (torch.from_numpy(ext[None]), torch.from_numpy(ext_atype[None]), torch.from_numpy(nlist[None]),
            torch.from_numpy(mapping[None]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(FrozenEnergyModel(model.eval()))
    lower, eager = scripted(*args), model.forward_lower(*args)
    torch.testing.assert_close(lower["energy"], eager["energy"], rtol=1e-6, atol=1e-7)
    full = evaluate(model, coord, atype, box)
    assert not np.allclose(full["energy"], evaluate(deserialize_model(float32_dict), coord, atype, box)["energy"],
                           rtol=1e-7, atol=0)  # the scripted module came from a model whose casts change energies
    np.testing.assert_allclose(lower["energy"].detach().numpy().reshape(-1), full["energy"].reshape(-1), rtol=1e-6)
