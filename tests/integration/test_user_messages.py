"""What a new user hits: a run that diverges, restarts with other sizes, checkpoints given where a frozen
model goes and the other way round, hints that fit the command, detail files, and printed paths."""

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from deeppot.cli import main
from deeppot.train.checkpoint import load_checkpoint
from helpers import DATA, WATER, small_water_input, write_json


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step training folder with a checkpoint and a frozen model."""
    folder = tmp_path_factory.mktemp("trained")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        write_json(folder / "input.json", small_water_input(numb_steps=2, disp_freq=1, save_freq=2))
        assert main(["train", "input.json"]) == 0
        assert main(["freeze", "-o", "model.pth"]) == 0
    finally:
        os.chdir(cwd)
    return folder


def test_stop_lr_above_start_lr_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = small_water_input()
    config["learning_rate"].update(start_lr=0.001, stop_lr=0.02)
    write_json(tmp_path / "input.json", config)
    code, err = run(capsys, "train", "input.json")
    assert code != 0 and "learning_rate/stop_lr" in err and "larger than start_lr" in err
    assert not (tmp_path / "lcurve.out").exists()


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    """An infinite learning rate from step 7 on (as a far too large one would) makes the loss NaN; the run
    stops there with exit status 2, before any update, and the step-5 checkpoint stays as it was."""
    from deeppot.train.learning_rate import ExpDecaySchedule

    honest = ExpDecaySchedule.value
    monkeypatch.setattr(ExpDecaySchedule, "value", lambda self, step: float("inf") if step >= 6 else honest(self, step))
    monkeypatch.chdir(tmp_path)
    write_json(tmp_path / "input.json", small_water_input(numb_steps=20, disp_freq=1, save_freq=5))
    code, err = run(capsys, "train", "input.json")
    assert code == 2
    assert "step 7: the loss became nan" in err and "model.ckpt-5.pt" in err and "start_lr" in err
    assert sorted(p.name for p in tmp_path.glob("model.ckpt-*.pt")) == ["model.ckpt-5.pt"]
    state = load_checkpoint(str(tmp_path / "model.ckpt-5.pt"))
    assert all(np.isfinite(v.numpy()).all() for v in state["model"].values() if v.is_floating_point())
    assert (tmp_path / "checkpoint").read_text().strip() == "model.ckpt-5.pt"


def test_restart_says_where_it_resumed(trained, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    config = small_water_input(numb_steps=3, disp_freq=1, save_freq=3)
    write_json(tmp_path / "input.json", config)
    with caplog.at_level(logging.INFO, logger="deeppot"):
        assert main(["train", "input.json", "--restart", str(trained / "model.ckpt-2.pt")]) == 0
    assert f"resumed from step 2, checkpoint {trained / 'model.ckpt-2.pt'}" in caplog.text
    assert "intra-op" in caplog.text  # the threads in use are printed


@pytest.mark.parametrize("flag", ["--restart", "--init-model"])
def test_checkpoint_with_other_sizes_names_the_keys(trained, tmp_path, monkeypatch, capsys, flag):
    monkeypatch.chdir(tmp_path)
    config = small_water_input()
    config["model"]["descriptor"]["neuron"] = [4, 8, 12]
    write_json(tmp_path / "input.json", config)
    code, err = run(capsys, "train", "input.json", flag, trained / "model.ckpt-2.pt")
    assert code != 0
    assert "model/descriptor/neuron: checkpoint [4, 8, 16], input.json [4, 8, 12]" in err
    assert "size mismatch" not in err and "Traceback" not in err


def test_test_accepts_a_checkpoint(trained, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="deeppot"):
        assert main(["test", "-m", str(trained / "model.ckpt-2.pt"), "-s", str(WATER / "data_3"), "-n", "1"]) == 0
    from_checkpoint = caplog.text.split("Force  RMSE")[1].split()[1]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deeppot"):
        assert main(["test", "-m", str(trained / "model.pth"), "-s", str(WATER / "data_3"), "-n", "1"]) == 0
    assert caplog.text.split("Force  RMSE")[1].split()[1] == from_checkpoint


def test_freeze_of_a_frozen_file_says_so(trained, capsys):
    code, err = run(capsys, "freeze", "-c", trained / "model.pth", "-o", trained / "again.pth")
    assert code != 0 and "already a frozen model" in err
    assert "weights_only" not in err and "arbitrary code" not in err and "Warning" not in err


def test_frozen_model_refused_as_a_checkpoint_by_train(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_json(tmp_path / "input.json", small_water_input())
    code, err = run(capsys, "train", "input.json", "--init-model", trained / "model.pth")
    assert code != 0 and "already a frozen model" in err


def test_test_on_an_element_the_model_lacks_has_a_test_hint(trained, tmp_path, capsys):
    system = tmp_path / "with_carbon"
    shutil.copytree(WATER / "data_3", system)
    (system / "type_map.raw").write_text("O\nC\n")
    code, err = run(capsys, "test", "-m", trained / "model.pth", "-s", system, "-n", "1")
    assert code != 0 and "['C']" in err and "trained with them" in err and "input.json" not in err


def test_test_on_a_missing_system_names_the_option(trained, tmp_path, capsys):
    code, err = run(capsys, "test", "-m", trained / "model.pth", "-s", tmp_path / "absent")
    assert code != 0 and "-s/--system" in err and "input.json" not in err


def test_detail_files_only_for_labelled_quantities(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["test", "-m", str(trained / "model.pth"), "-s", str(WATER / "data_3"), "-n", "2", "-d", "detail"]) == 0
    written = sorted(p.name for p in tmp_path.glob("detail.*"))
    assert written == ["detail.e.out", "detail.e_peratom.out", "detail.f.out"]  # water has no virial labels


def test_printed_paths_are_normalised(trained, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    detour = os.path.relpath(WATER / "data_3", tmp_path).replace("water", "water/../water")
    with caplog.at_level(logging.INFO, logger="deeppot"):
        assert main(["test", "-m", str(trained / "model.pth"), "-s", detour, "-n", "1"]) == 0
    assert "/../water" not in caplog.text and os.path.normpath(detour) in caplog.text


def cut_outcar(tmp_path: Path) -> Path:
    lines = (DATA / "ch4_vasp" / "000000" / "OUTCAR").read_text().splitlines(keepends=True)
    cut = tmp_path / "cut" / "OUTCAR"
    cut.parent.mkdir()
    cut.write_text("".join(lines[: len(lines) // 2]))
    return cut


def test_convert_reports_frames_per_file_and_a_cut_outcar(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.chdir(tmp_path)
    cut = cut_outcar(tmp_path)
    whole = DATA / "ch4_vasp" / "000001" / "OUTCAR"
    with caplog.at_level(logging.INFO, logger="deeppot"):
        assert main(["convert", str(cut), str(whole), "-o", "out", "--fmt", "vasp/outcar"]) == 0
    out = capsys.readouterr().out
    assert f"{cut}: 3 frames" in out and f"{whole}: 10 frames" in out
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(cut) in warnings[0] and "ends inside ionic step 4" in warnings[0]


def test_convert_removes_what_a_killed_run_left_and_keeps_the_umask(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dead_pid = 2**22 + 12345  # above Linux's pid_max default: no such process
    leftover = tmp_path / f".out.{dead_pid}.k3j2.tmp"
    (leftover / "training_data").mkdir(parents=True)
    alive = tmp_path / f".out.{os.getpid()}.abcd.tmp"  # a run still going (this process)
    alive.mkdir()
    old_umask = os.umask(0o022)
    try:
        assert main(["convert", str(DATA / "ch4_vasp" / "000001" / "OUTCAR"), "-o", "out", "--fmt", "vasp/outcar"]) == 0
    finally:
        os.umask(old_umask)
    assert not leftover.exists() and alive.exists()
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("flags, expected", [([], False), (["--aoti"], True)])
def test_freeze_aoti_flag_reaches_the_model_file_writer(trained, tmp_path, monkeypatch, flags, expected):
    """The compile itself is tested in test_aoti_export.py; here only that the command passes the choice on."""
    import deeppot.export.freeze as freeze_module

    seen = {}
    monkeypatch.setattr(freeze_module, "save_model_file",
                        lambda model, params, path, aoti, modifier=None: seen.update(aoti=aoti))
    assert main(["freeze", "-c", str(trained / "model.ckpt-2.pt"), "-o", str(tmp_path / "m.pth"), *flags]) == 0
    assert seen == {"aoti": expected}
