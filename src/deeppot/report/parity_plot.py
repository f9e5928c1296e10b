"""``deeppot test --plot``: predicted against reference values, one panel per quantity, the RMSE in the legend."""

import math
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from deeppot.report.figures import new_figure, save_figure

# the most points drawn per panel (evenly spaced picks); the RMSE always uses all of them
MAX_POINTS = 200_000


def pooled_rmse(pairs: List[Tuple[np.ndarray, np.ndarray]]) -> Tuple[float, int]:
    """RMSE over all (reference, predicted) pairs pooled, and their number."""
    reference = np.concatenate([r for r, _ in pairs])
    predicted = np.concatenate([p for _, p in pairs])
    return float(np.sqrt(np.mean((predicted - reference) ** 2))), reference.size


def plot_parity(parity: Dict[str, List[Tuple[np.ndarray, np.ndarray]]], output: Path, title: str) -> Path:
    """Write the parity figure to ``output``: for each quantity (its name carries the unit) the predicted
    values against the reference ones with the y = x line, the pooled RMSE and the count in the legend."""
    quantities = list(parity)
    figure = new_figure(max(5.0, 4.2 * len(quantities)), 4.6)
    axes = figure.subplots(1, len(quantities), squeeze=False)[0]
    for ax, quantity in zip(axes, quantities):
        reference = np.concatenate([r for r, _ in parity[quantity]])
        predicted = np.concatenate([p for _, p in parity[quantity]])
        rmse, count = pooled_rmse(parity[quantity])
        step = max(1, math.ceil(count / MAX_POINTS))
        unit = quantity[quantity.rfind("(") + 1: -1] if quantity.endswith(")") else ""
        ax.scatter(reference[::step], predicted[::step], s=16 if count < 100 else 4 if count < 2000 else 1, alpha=0.6, rasterized=True,
                   label=f"RMSE {rmse:.3e} {unit}\n{count} values")
        low = float(min(reference.min(), predicted.min()))
        high = float(max(reference.max(), predicted.max()))
        pad = 0.05 * (high - low or abs(high) or 1.0)
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="black", linewidth=0.8, label="y = x")
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
        ax.set_aspect("equal")
        ax.set_xlabel(f"reference {quantity}", fontsize=9)
        ax.set_ylabel(f"predicted {quantity}", fontsize=9)
        ax.locator_params(nbins=5)
        ax.tick_params(labelsize=8)
        ax.legend(loc="upper left", fontsize=8, framealpha=0.9)  # off the diagonal of a good model
        ax.grid(True, alpha=0.3)
    figure.suptitle(title, fontsize=10)
    return save_figure(figure, output)
