"""``torchrun`` data-parallel training on loopback (2 CPU processes, gloo): 2 ranks x batch 1 follow the loss
trajectory of 1 rank x batch 2 on the same two frames, a 2-rank restart continues a 1-rank checkpoint, only
rank 0 writes, a killed rank stops the other with a message, and a killed torchrun stops both ranks."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from deeppot.cli import main
from deeppot.train.checkpoint import load_checkpoint
from helpers import DEEPPOT, WATER, small_water_input, write_json

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


@pytest.fixture(scope="module")
def two_frames(tmp_path_factory) -> Path:
    """Frames 0 and 1 of the water set as their own system (written to a temporary folder)."""
    root = tmp_path_factory.mktemp("data") / "two_frames"
    (root / "set.000").mkdir(parents=True)
    for name in ("type.raw", "type_map.raw"):
        (root / name).write_text((WATER / "data_0" / name).read_text())
    for name in ("box", "coord", "energy", "force"):
        np.save(root / "set.000" / f"{name}.npy", np.load(WATER / "data_0" / "set.000" / f"{name}.npy")[:2])
    return root


def tiny_input(data: Path, batch_size: int, numb_steps: int = 4) -> dict:
    config = small_water_input(numb_steps=numb_steps, disp_freq=1, save_freq=2)
    config["training"]["training_data"].update(systems=[str(data)], batch_size=batch_size)
    del config["training"]["validation_data"]
    config["learning_rate"]["scale_by_worker"] = "none"  # the same lr as the 1-rank run
    config["learning_rate"].update(decay_steps=1, stop_lr=1e-4)  # the weights move every step
    return config


def launch(folder: Path, *argv) -> subprocess.Popen:
    return subprocess.Popen([*TORCHRUN, *map(str, argv)], cwd=folder, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})


def stop(launcher: subprocess.Popen) -> None:
    """End torchrun and its ranks if they still run: the ranks sit in sessions of their own, so killing the
    launcher alone would leave them training, orphaned, for the rest of the suite."""
    if launcher.poll() is not None:
        return
    ranks = rank_pids(launcher.pid)
    launcher.terminate()  # torchrun stops its ranks on SIGTERM
    try:
        launcher.wait(timeout=30)
    except subprocess.TimeoutExpired:
        launcher.kill()
    for pid in ranks.values():
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def torchrun(folder: Path, *argv, timeout: float = 240) -> subprocess.CompletedProcess:
    launcher = launch(folder, *argv)
    try:
        stdout, stderr = launcher.communicate(timeout=timeout)
    finally:
        stop(launcher)
    return subprocess.CompletedProcess(launcher.args, launcher.returncode, stdout, stderr)


def data_rows(path: Path):
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = load_checkpoint(str(a))["model"], load_checkpoint(str(b))["model"]
    for name in first:
        assert torch.allclose(first[name], second[name], rtol=0, atol=1e-10), name


def test_two_ranks_match_one_rank_with_the_batch_of_both(tmp_path, monkeypatch, two_frames):
    one, two, restarted = (tmp_path / name for name in ("one", "two", "restarted"))
    for folder, batch_size in ((one, 2), (two, 1), (restarted, 1)):
        folder.mkdir()
        write_json(folder / "input.json", tiny_input(two_frames, batch_size))
    monkeypatch.chdir(one)
    assert main(["train", "input.json"]) == 0

    run = torchrun(two, "-m", "deeppot", "train", "input.json")
    assert run.returncode == 0, run.stderr[-3000:]
    assert data_rows(two / "lcurve.out") == data_rows(one / "lcurve.out")  # every step's loss and RMSEs
    assert_same_weights(one / "model.ckpt-4.pt", two / "model.ckpt-4.pt")
    assert run.stderr.count("step 4/4") == 1  # rank 0 alone logs
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert len(load_checkpoint(str(two / "model.ckpt-4.pt"))["rank_samplers"]) == 2

    # a 1-rank checkpoint continued by 2 ranks (through the console script) ends where the 1-rank run did
    run = torchrun(restarted, DEEPPOT, "train", "input.json", "--restart", one / "model.ckpt-2.pt")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "written by 1 training process(es), this run has 2" in run.stderr
    assert data_rows(restarted / "lcurve.out") == data_rows(one / "lcurve.out")[2:]
    assert_same_weights(one / "model.ckpt-4.pt", restarted / "model.ckpt-4.pt")


def rank_pids(parent: int) -> dict:
    """{rank: pid} of torchrun's worker processes (its children with RANK in their environment), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text() if entry.name.isdigit() else ""
            environ = (entry / "environ").read_bytes().split(b"\0") if status else []
        except OSError:
            continue
        ppid = [int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")]
        rank = [int(v[5:]) for v in environ if v.startswith(b"RANK=")]
        if ppid == [parent] and rank:
            found[rank[0]] = int(entry.name)
    return found


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def test_a_killed_rank_stops_the_other_with_a_message(tmp_path, two_frames):
    # long enough to be killed mid-run, below the numb_steps from which training/fast_step "auto" compiles
    write_json(tmp_path / "input.json", tiny_input(two_frames, 1, numb_steps=5000))
    launcher = launch(tmp_path, "-m", "deeppot", "train", "input.json")
    try:
        lcurve = tmp_path / "lcurve.out"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (lcurve.exists() and len(data_rows(lcurve)) >= 3):
            time.sleep(0.5)
        assert lcurve.exists() and len(data_rows(lcurve)) >= 3, "training did not start"
        pids = rank_pids(launcher.pid)
        assert set(pids) == {0, 1}
        os.kill(pids[1], signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = launcher.communicate(timeout=60)
        stopped_after = time.monotonic() - killed
    finally:
        stop(launcher)
    assert launcher.returncode != 0
    assert stopped_after < 60
    assert not running(pids[0])  # rank 0 is gone too
    assert "another training process stopped" in stderr or "SIGKILL" in stderr, stderr[-3000:]


def test_the_ranks_stop_when_torchrun_is_killed(tmp_path, two_frames):
    write_json(tmp_path / "input.json", tiny_input(two_frames, 1, numb_steps=5000))
    launcher = launch(tmp_path, "-m", "deeppot", "train", "input.json")
    ranks = {}
    try:
        lcurve = tmp_path / "lcurve.out"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (lcurve.exists() and data_rows(lcurve)):
            time.sleep(0.2)
        assert lcurve.exists() and data_rows(lcurve), "training did not start"
        ranks = rank_pids(launcher.pid)
        assert set(ranks) == {0, 1}
        launcher.kill()  # SIGKILL: torchrun cannot stop its ranks, which run in sessions of their own
        launcher.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(map(running, ranks.values())):
            time.sleep(0.2)
        survivors = sorted(rank for rank, pid in ranks.items() if running(pid))
    finally:
        stop(launcher)
        for pid in ranks.values():  # no rank trains on for the rest of the suite, whatever happened
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        launcher.communicate(timeout=30)
    assert survivors == [], f"ranks {survivors} still ran 20 s after torchrun was killed"
