"""Thread settings read as DeePMD-kit users set them, the steady-step ETA, and the torch requirement
that the README describes."""

import re
import subprocess
import sys
import tomllib

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

from deeppot.errors import DeeppotError
from deeppot.runtime import positive_int_from_env
from deeppot.train.eta import EtaClock
from helpers import ROOT

INTRA = ("DP_INTRA_OP_PARALLELISM_THREADS", "OMP_NUM_THREADS")


def test_deepmd_variable_wins_over_omp_and_zero_means_unset():
    assert positive_int_from_env(INTRA, {"DP_INTRA_OP_PARALLELISM_THREADS": "3", "OMP_NUM_THREADS": "1"}) == \
        (3, "DP_INTRA_OP_PARALLELISM_THREADS")
    assert positive_int_from_env(INTRA, {"DP_INTRA_OP_PARALLELISM_THREADS": "0", "OMP_NUM_THREADS": "2"}) == \
        (2, "OMP_NUM_THREADS")
    assert positive_int_from_env(INTRA, {}) == (None, "")


def test_bad_thread_variable_is_named():
    with pytest.raises(DeeppotError, match="OMP_NUM_THREADS='two'"):
        positive_int_from_env(INTRA, {"OMP_NUM_THREADS": "two"})


def test_train_command_sets_and_prints_the_threads(tmp_path):
    """In a fresh process: the variable is applied to torch, the wait policy defaults to passive."""
    code = ("import os, torch\nfrom deeppot.runtime import configure_threads\ns = configure_threads()\n"
            "print(torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'], s.describe())")
    env = {"PATH": "", "DP_INTRA_OP_PARALLELISM_THREADS": "1", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith("1 PASSIVE threads: 1 intra-op (DP_INTRA_OP_PARALLELISM_THREADS)")


def test_eta_leaves_out_the_first_step():
    now = [0.0]
    clock = EtaClock(first_step=0, last_step=100, clock=lambda: now[0])
    now[0] = 30.0  # start-up and first step: 30 s
    clock.step_done(1)
    assert clock.eta() is None  # no steady step yet
    for step in range(2, 11):  # then 0.1 s per step
        now[0] += 0.1
        clock.step_done(step)
    assert clock.eta() == pytest.approx(90 * 0.1)
    assert clock.elapsed() == pytest.approx(30.9)


def test_eta_after_restart_counts_from_the_resumed_step():
    now = [0.0]
    clock = EtaClock(first_step=50, last_step=60, clock=lambda: now[0])
    now[0] = 5.0
    clock.step_done(51)
    now[0] = 7.0
    clock.step_done(53)
    assert clock.eta() == pytest.approx(7 * 1.0)


def torch_requirement() -> Requirement:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(Requirement(d) for d in dependencies if Requirement(d).name == "torch")


def test_installed_torch_is_in_the_allowed_range():
    assert Version(Version(torch.__version__).base_version) in torch_requirement().specifier


def test_readme_states_the_torch_range_and_the_cpu_build():
    readme = (ROOT / "README.md").read_text()
    specifier = str(torch_requirement().specifier)
    stated = set(re.findall(r"`torch(>=[\d.]+,<[\d.]+)`", readme))
    assert stated and all(set(s.split(",")) == set(specifier.split(",")) for s in stated), (stated, specifier)
    assert "CUDA build" in readme and "--index-url https://download.pytorch.org/whl/cpu" in readme
    tested = re.search(r"tests run with torch (\d+(?:\.\d+)*)", readme).group(1)
    assert Version(tested) in torch_requirement().specifier
    assert Version(torch.__version__).base_version == tested


@pytest.mark.parametrize("written", [
    "examples/water/detail.e.out", "examples/water/lcurve.out", "examples/water/model.ckpt-100.pt",
    "examples/water/model.pth", "examples/ch4/ch4_data/training_data/type.raw", "examples/ch4/md.traj",
    "examples/water/model_devi.out", "examples/water/lammps/log.lammps",
])
def test_gitignore_covers_what_the_quickstarts_write(written):
    result = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", written])
    assert result.returncode == 0, f"{written} is not ignored by .gitignore"
