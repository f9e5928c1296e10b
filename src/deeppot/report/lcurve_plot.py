"""``lcurve.out`` as a figure: one log-log panel per quantity (training and validation), the learning rate below.

Reads any lcurve.out DeePMD-kit or deeppot writes: a header line ``# step <name>_val <name>_trn ... lr`` (``_tst``
in older DeePMD-kit files, ``_trn`` only without validation data) and rows of numbers. The file may be growing:
a last row still being written (fewer numbers, or a cut number) is left out.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from deeppot.errors import DataError
from deeppot.report.figures import new_figure, save_figure

log = logging.getLogger("deeppot")

SERIES_SUFFIXES = {"_trn": "training", "_val": "validation", "_tst": "validation"}

# metric -> axis label (the units DeePMD-kit's losses display)
AXIS_LABELS = {
    "rmse": "sqrt(loss)",
    "rmse_e": "energy RMSE (eV/atom)",
    "rmse_f": "force RMSE (eV/Å)",
    "rmse_v": "virial RMSE (eV/atom)",
    "rmse_ae": "atomic energy RMSE (eV)",
    "rmse_pf": "prefactor force RMSE (eV/Å)",
}


@dataclass
class Lcurve:
    """The numbers of an lcurve.out: ``steps`` (nrows,), ``lr`` (nrows,), ``series[metric][kind]`` (nrows,) with
    kind "training" or "validation"; NaN where the file says nan (no labels)."""

    path: Path
    steps: np.ndarray
    lr: np.ndarray
    series: Dict[str, Dict[str, np.ndarray]]


def read_lcurve(path: Path) -> Lcurve:
    """Parse ``path``; DataError if it is missing, has no ``# step ... lr`` header, or no complete row yet."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; give the lcurve.out that 'deeppot train' writes (training/disp_file)")
    lines = path.read_text(errors="replace").splitlines()
    header = next((line[1:].split() for line in lines if line.startswith("#")), [])
    if len(header) < 2 or header[0] != "step" or "lr" not in header:
        raise DataError(f"{path}: not a learning-curve file: its first line should read '# step <metric>_trn ... lr' "
                        "as in the lcurve.out that 'deeppot train' or 'dp train' writes")
    rows: List[List[float]] = []
    data_lines = [line for line in lines if line.strip() and not line.startswith("#")]
    for number, line in enumerate(data_lines):
        values = _parse_row(line, len(header))
        if values is not None:
            rows.append(values)
        elif number < len(data_lines) - 1:  # the last row may still be being written; others should not break
            log.warning("%s: left out a row that does not hold %d numbers: %r", path, len(header), line[:80])
    if not rows:
        raise DataError(f"{path}: no complete row yet; plot again after the first disp_freq training steps")
    table = np.array(rows)
    series: Dict[str, Dict[str, np.ndarray]] = {}
    for column, name in enumerate(header):
        if name in ("step", "lr"):
            continue
        metric, kind = _split_name(name)
        series.setdefault(metric, {})[kind] = table[:, column]
    return Lcurve(path, table[:, 0], table[:, header.index("lr")], series)


def _parse_row(line: str, ncolumns: int):
    parts = line.split()
    if len(parts) != ncolumns:
        return None
    try:
        return [float(p) for p in parts]
    except ValueError:
        return None


def _split_name(name: str) -> Tuple[str, str]:
    for suffix, kind in SERIES_SUFFIXES.items():
        if name.endswith(suffix):
            return name[: -len(suffix)], kind
    return name, "training"


def axis_label(metric: str) -> str:
    """The y label of a metric panel; tensor metrics keep their label's unit."""
    if metric in AXIS_LABELS:
        return AXIS_LABELS[metric]
    for prefix, text in (("rmse_global_", "global {} RMSE/N"), ("rmse_local_", "atomic {} RMSE")):
        if metric.startswith(prefix):
            return text.format(metric[len(prefix):]) + " (label unit)"
    return metric


def plot_lcurve(lcurve: Lcurve, output: Path) -> Path:
    """Write the learning-curve figure of ``lcurve`` to ``output`` (format from its suffix); steps <= 0 and
    values <= 0 cannot sit on log axes and are left out."""
    metrics = list(lcurve.series)
    figure = new_figure(7.0, 2.2 * (len(metrics) + 1))
    axes = figure.subplots(len(metrics) + 1, 1, sharex=True, squeeze=False)[:, 0]
    steps = np.where(lcurve.steps > 0, lcurve.steps, np.nan)
    for ax, metric in zip(axes, metrics):
        drawn = 0
        for kind, style in (("training", "-"), ("validation", "--")):
            values = lcurve.series[metric].get(kind)
            if values is None:
                continue
            shown = np.where(values > 0, values, np.nan)
            points = np.count_nonzero(np.isfinite(shown))
            if points:  # markers while there are few points, so that a lone one shows
                ax.plot(steps, shown, style, marker="o" if points < 50 else None, markersize=3, label=kind)
                drawn += 1
        if not drawn:
            ax.text(0.5, 0.5, "no data (nan: no labels)", ha="center", va="center", transform=ax.transAxes)
        ax.set_yscale("log")
        ax.set_ylabel(axis_label(metric), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        if drawn:
            ax.legend(loc="upper right")
    lr_axis = axes[-1]
    lr_axis.plot(steps, np.where(lcurve.lr > 0, lcurve.lr, np.nan), color="black")
    lr_axis.set_yscale("log")
    lr_axis.set_xscale("log")
    lr_axis.set_ylabel("learning rate", fontsize=9)
    lr_axis.set_xlabel("step")
    lr_axis.grid(True, which="both", alpha=0.3)
    axes[0].set_title(f"{lcurve.path.name}: {len(lcurve.steps)} rows, last step {int(lcurve.steps[-1])}")
    return save_figure(figure, output)
