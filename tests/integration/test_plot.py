"""deeppot plot: learning curves of the water example's lcurve.out, a growing file, other layouts, bad input."""

import logging

import pytest

from deeppot.cli import main
from figure_checks import check_figure
from helpers import small_water_input, write_json

TENSOR_LCURVE = """# step     rmse_global_dipole_trn rmse_local_dipole_trn   lr
      1      3.10e-01    2.00e-01    1.0e-03
     10      2.10e-01    nan    5.0e-04
     20      1.10e-01    nan    2.0e-04
"""


@pytest.fixture(scope="module")
def water_lcurve(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plot")
    config = small_water_input(numb_steps=6, disp_freq=2, save_freq=6)
    config["training"]["disp_file"] = str(folder / "lcurve.out")
    config["training"]["save_dir"] = str(folder)
    assert main(["train", str(write_json(folder / "input.json", config)), "-o", str(folder / "out.json")]) == 0
    return folder / "lcurve.out"


def test_water_lcurve_figure(water_lcurve, tmp_path):
    figure = tmp_path / "lcurve.png"
    assert main(["plot", str(water_lcurve), "-o", str(figure)]) == 0
    check_figure(figure, rows=4)  # rmse, rmse_e, rmse_f and the learning rate
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind


def test_growing_file_with_a_partial_last_row(water_lcurve, tmp_path, caplog):
    growing = tmp_path / "lcurve.out"
    growing.write_text(water_lcurve.read_text() + "      8      2.41e+01    2.5")
    figure = tmp_path / "growing.png"
    with caplog.at_level(logging.INFO, logger="deeppot"):
        assert main(["plot", str(growing), "-o", str(figure)]) == 0
    check_figure(figure, rows=4)
    assert "4 rows, last step 6" in caplog.text and "left out" not in caplog.text


def test_tensor_lcurve_without_validation(tmp_path):
    (tmp_path / "lcurve.out").write_text(TENSOR_LCURVE)
    figure = tmp_path / "dipole.pdf"  # another format, by suffix
    assert main(["plot", str(tmp_path / "lcurve.out"), "-o", str(figure)]) == 0
    assert figure.read_bytes().startswith(b"%PDF")
    png = tmp_path / "dipole.png"
    assert main(["plot", str(tmp_path / "lcurve.out"), "-o", str(png)]) == 0
    check_figure(png, rows=3)


@pytest.mark.parametrize("content, message", [
    (None, "file not found"),
    ("step energy\n1 2\n", "not a learning-curve file"),
    ("# step rmse_trn lr\n", "no complete row yet"),
])
def test_bad_lcurve_is_named(tmp_path, capsys, content, message):
    lcurve = tmp_path / "lcurve.out"
    if content is not None:
        lcurve.write_text(content)
    assert main(["plot", str(lcurve), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert str(lcurve) in err and message in err
    assert not (tmp_path / "x.png").exists()


def test_bad_figure_name_is_refused_before_reading(water_lcurve, tmp_path, capsys):
    assert main(["plot", str(water_lcurve), "-o", str(tmp_path / "lcurve.xyz")]) == 2
    assert "-o/--output" in capsys.readouterr().err
    assert main(["plot", str(water_lcurve), "-o", str(tmp_path / "missing" / "a.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
