"""deeppot test --plot: parity figures of the water example (energy, forces) and of a dipole model, the RMSE in
each legend equal to what 'deeppot test' prints; bad figure names refused before testing."""


import pytest

from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.export.model_file import save_model_file
from deeppot.infer.model_test import PARITY_ENERGY, PARITY_FORCE, run_test
from deeppot.report.parity_plot import pooled_rmse
from deeppot.train.trainer import Trainer
from figure_checks import check_figure
from helpers import DATA, WATER, small_tensor_input, small_water_input


def _frozen(config: dict, path):
    trainer = Trainer(validate_input(config), output_dir=path.parent)
    save_model_file(trainer.model, trainer.model_params(), path)
    return path


@pytest.fixture(scope="module")
def water_model(tmp_path_factory):
    return _frozen(small_water_input(), tmp_path_factory.mktemp("parity") / "water.pth")


def test_water_parity_figure_and_its_rmse(water_model, tmp_path):
    figure = tmp_path / "parity.png"
    assert main(["test", "-m", str(water_model), "-s", str(WATER), "-n", "2", "--plot", str(figure)]) == 0
    check_figure(figure, rows=1, columns=2)  # energy per atom, force components
    parity = {}
    average = run_test(str(water_model), str(WATER), 2, None, False, None, False, parity)
    assert sorted(parity) == sorted([PARITY_ENERGY, PARITY_FORCE])  # water has no virial labels
    assert len(parity[PARITY_ENERGY]) == 4  # one pair per system
    assert pooled_rmse(parity[PARITY_ENERGY]) == (pytest.approx(average["rmse_ea"], rel=1e-12), 8)
    assert pooled_rmse(parity[PARITY_FORCE]) == (pytest.approx(average["rmse_f"], rel=1e-12), 4 * 2 * 192 * 3)


def test_dipole_parity_figure(tmp_path):
    config = small_tensor_input("water_dipole")
    config["model"]["data_stat_nbatch"] = 1
    model = _frozen(config, tmp_path / "dipole.pth")
    system = DATA / "water_dipole" / "validation_data_reformat" / "global_system"
    figure = tmp_path / "dipole.png"
    assert main(["test", "-m", str(model), "-s", str(system), "-n", "3", "--plot", str(figure)]) == 0
    check_figure(figure, rows=1, columns=1)
    parity = {}
    average = run_test(str(model), str(system), 3, None, False, None, False, parity)
    assert list(parity) == ["dipole components (label unit)"]
    assert pooled_rmse(parity["dipole components (label unit)"]) == (pytest.approx(average["rmse"]), 9)


def test_bad_plot_name_is_refused_before_testing(water_model, tmp_path, capsys):
    assert main(["test", "-m", str(water_model), "-s", str(WATER), "--plot", str(tmp_path / "parity.txt")]) == 2
    err = capsys.readouterr().err
    assert "--plot" in err and "unknown figure format '.txt'" in err and "# testing system" not in err
    assert not list(tmp_path.iterdir())
