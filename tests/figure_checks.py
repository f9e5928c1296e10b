"""Reading a written figure back: its pixel size, and the axes frames drawn in it (not an empty picture)."""

from pathlib import Path
from typing import Tuple

import numpy as np
from matplotlib.image import imread


def read_png(path: Path) -> np.ndarray:
    """(height, width) grey levels in [0, 1] of a PNG file."""
    image = imread(str(path))
    return image[..., :3].mean(axis=-1)


def frame_lines(grey: np.ndarray) -> Tuple[int, int]:
    """(horizontal, vertical) number of dark lines covering at least half the image's width (height): the axes
    spines (panels stacked in a column add up their vertical spines); a figure without axes has none."""
    def count(mask: np.ndarray) -> int:
        rows = mask.mean(axis=1) > 0.5
        return int(np.count_nonzero(rows[1:] & ~rows[:-1]) + rows[0])

    dark = grey < 0.35
    return count(dark), count(dark.T)


def check_figure(path: Path, rows: int, columns: int = 1, min_size: Tuple[int, int] = (400, 400)) -> np.ndarray:
    """Assert ``path`` is a PNG of at least ``min_size`` pixels (height, width) with a grid of ``rows`` x ``columns``
    axes frames and coloured data drawn in it; returns the grey image."""
    grey = read_png(path)
    assert grey.shape[0] >= min_size[0] and grey.shape[1] >= min_size[1], grey.shape
    assert frame_lines(grey) == (2 * rows, 2 * columns), (frame_lines(grey), rows, columns)
    rgb = imread(str(path))[..., :3]
    coloured = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3  # lines and markers, not black/white/grey
    assert np.count_nonzero(coloured) > 200, "no data drawn"
    return grey
