"""examples/ch4 end to end, as its README runs it, on 4 of the 30 OUTCARs and a few training steps:
convert, neighbor-stat, train, freeze, test, and the ASE MD script."""

import glob
import json
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT, SHARED, DEEPPOT

EXAMPLE = ROOT / "examples" / "ch4"


def readme_commands():
    block = re.search(r"```bash\n(.*?)```", (EXAMPLE / "README.md").read_text(), re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ch4_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("ch4")
    (base / "shared").symlink_to(SHARED)
    workdir = base / "project" / "examples" / "ch4"
    shutil.copytree(EXAMPLE, workdir)
    config = json.loads((workdir / "input.json").read_text())
    config["training"].update(numb_steps=20, disp_freq=10, save_freq=20)
    (workdir / "input.json").write_text(json.dumps(config))
    outputs = {}
    for argv in readme_commands():
        if argv[0] == "deeppot":
            argv = [DEEPPOT] + [a for pattern in argv[1:] for a in (
                sorted(glob.glob(str(workdir / pattern)))[:4] if "*" in pattern else [pattern])]
        elif argv[0] == "python":
            argv = [sys.executable, argv[1], argv[2], "20"]
        result = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{argv} failed:\n{result.stderr}"
        outputs[argv[1] if argv[0] == DEEPPOT else "md"] = result.stdout + result.stderr
    return workdir, outputs


def test_readme_runs_every_step(ch4_run):
    _, outputs = ch4_run
    assert set(outputs) == {"convert", "neighbor-stat", "train", "freeze", "test", "md"}


def test_convert_split(ch4_run):
    workdir, outputs = ch4_run
    assert "40 frames" in outputs["convert"]
    assert len(re.findall(r"OUTCAR: 10 frames", outputs["convert"])) == 4  # frames read from each file
    train = np.load(workdir / "ch4_data" / "training_data" / "set.000" / "energy.npy")
    valid = np.load(workdir / "ch4_data" / "validation_data" / "set.000" / "energy.npy")
    assert len(train) == 32 and len(valid) == 8


def test_neighbor_stat_of_methane(ch4_run):
    _, outputs = ch4_run
    assert "max_nbor_size: [4 1]" in outputs["neighbor-stat"]
    distance = float(re.search(r"min_nbor_dist: (\S+)", outputs["neighbor-stat"]).group(1))
    assert 0.9 < distance < 1.2  # a C-H bond


def test_trained_model_tested_on_validation(ch4_run):
    workdir, outputs = ch4_run
    assert (workdir / "model.pth").is_file()
    for label in ("Energy RMSE/Natoms", "Force  RMSE", "Virial RMSE"):
        assert label in outputs["test"]
    assert np.loadtxt(workdir / "detail.f.out").shape == (8 * 5, 6)
    assert np.loadtxt(workdir / "detail.v.out").shape == (8, 18)  # the OUTCARs have virials


def test_md_script(ch4_run):
    workdir, outputs = ch4_run
    energies = [float(x) for x in re.findall(r"Epot\s+(\S+)", outputs["md"])]
    assert len(energies) == 4 and np.isfinite(energies).all()  # NVT steps 0 and 20, then NVE steps 0 and 20
    temperature = float(re.search(r"NVT mean temperature (\S+) K", outputs["md"]).group(1))
    drift = float(re.search(r"NVE total-energy drift (\S+) meV/atom/ps", outputs["md"]).group(1))
    assert 0 < temperature < 2000 and np.isfinite(drift)
    assert "Warning" not in outputs["md"]  # no deprecation warning from ASE
    assert (workdir / "md.traj").is_file()
