"""float32 and mixed-precision (bfloat16) frozen models in LAMMPS: run 0 equals DeepPot.eval to the summation
round-off of float32 networks (LAMMPS runs the scripted MD entry point, Python the eager model)."""

import numpy as np
import pytest

from conftest import RCUT, SEL, make_model
from deeppot.export.model_file import load_model, save_model_file
from deeppot.model import deserialize_model
from deeppot.nn.precision import enable_mixed_precision
from test_lammps_parity import lammps_and_reference


def _float32(node):
    if isinstance(node, dict):
        return {k: "float32" if k == "precision" else _float32(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_float32(v) for v in node]
    return node


@pytest.mark.parametrize("compute_prec", ["bfloat16"])  # float32 networks with the casts
def test_run0_equals_deeppot_eval(tmp_path, lammps, compute_prec):
    model = deserialize_model(_float32(make_model(rcut=RCUT, rcut_smth=0.5, sel=SEL, seed=1).serialize()))
    enable_mixed_precision(model, None if compute_prec is None else {"output_prec": "float32",
                                                                     "compute_prec": compute_prec})
    path = tmp_path / "model.pth"
    save_model_file(model, {}, path)
    assert load_model(path)[1].get("mixed_precision", {}).get("compute_prec") == compute_prec
    rows, col, thermo, (e, f, v, ae, av) = lammps_and_reference(lammps, tmp_path, path, 1)
    force = rows[:, [col["fx"], col["fy"], col["fz"]]]
    assert np.abs(f).max() > 1e-3
    np.testing.assert_allclose(thermo["PotEng"], e, rtol=1e-6)
    np.testing.assert_allclose(rows[:, col["c_pe"]], ae, rtol=1e-5, atol=1e-6 * np.abs(ae).max())
    np.testing.assert_allclose(force, f, rtol=0, atol=1e-5 * np.abs(f).max())
