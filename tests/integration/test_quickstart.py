"""The README's quickstart, run as a user would: the commands of its first `deeppot` block, in a copy of
examples/water placed beside a `shared` link so the example's relative data paths resolve."""

import json
import re
import shlex
import shutil
import subprocess

import numpy as np
import pytest

from helpers import ROOT, SHARED, DEEPPOT



def quickstart_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart: water", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("quickstart")
    (base / "shared").symlink_to(SHARED)
    workdir = base / "project" / "examples" / "water"
    shutil.copytree(ROOT / "examples" / "water", workdir)
    config = json.loads((workdir / "input.json").read_text())
    config["training"].update(numb_steps=4, disp_freq=2, save_freq=2)
    config["model"]["data_stat_nbatch"] = 2
    (workdir / "input.json").write_text(json.dumps(config))
    logs = []
    for command in quickstart_commands():
        argv = shlex.split(command)
        assert argv[0] == "deeppot"
        result = subprocess.run([DEEPPOT] + argv[1:], cwd=workdir, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command} failed:\n{result.stderr}"
        logs.append(result.stderr + result.stdout)
    return workdir, logs


def test_quickstart_has_the_three_commands():
    words = [shlex.split(c)[1] for c in quickstart_commands()]
    assert words == ["train", "freeze", "test"]


def test_train_outputs(quickstart_run):
    workdir, logs = quickstart_run
    lines = (workdir / "lcurve.out").read_text().splitlines()
    assert lines[0].split()[1:] == [
        "step", "rmse_val", "rmse_trn", "rmse_e_val", "rmse_e_trn", "rmse_f_val", "rmse_f_trn", "lr"]
    steps = [int(line.split()[0]) for line in lines if not line.startswith("#")]
    assert steps == [1, 2, 4]
    out = json.loads((workdir / "out.json").read_text())
    assert out["model"]["descriptor"]["sel"] == [46, 92]
    assert out["model"]["descriptor"]["type_one_side"] is True
    assert "_comment1" not in out
    assert (workdir / "checkpoint").read_text().strip() == "model.ckpt-4.pt"
    assert (workdir / "model.ckpt-2.pt").is_file() and (workdir / "model.ckpt-4.pt").is_file()
    assert "ETA" in logs[0]


def test_freeze_and_test_outputs(quickstart_run):
    workdir, logs = quickstart_run
    assert (workdir / "model.pth").is_file()
    test_log = logs[2]
    for label in ("Energy MAE ", "Energy RMSE ", "Energy RMSE/Natoms", "Force  MAE", "Force  RMSE"):
        assert label in test_log
    energy = np.loadtxt(workdir / "detail.e.out")
    force = np.loadtxt(workdir / "detail.f.out")
    assert energy.shape == (30, 2) and force.shape == (30 * 192, 6)
    assert (workdir / "detail.e.out").read_text().startswith("# ")
    rmse_f = float(re.search(r"Force  RMSE\s*:\s*(\S+)", test_log).group(1))
    assert rmse_f == pytest.approx(np.sqrt(np.mean((force[:, :3] - force[:, 3:]) ** 2)), rel=1e-6)
