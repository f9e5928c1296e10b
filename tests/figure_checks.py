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


def check_figure(path: Path, panels: int, min_size: Tuple[int, int] = (400, 400)) -> np.ndarray:
    """Assert ``path`` is a PNG of at least ``min_size`` pixels (height, width) with ``panels`` axes frames (two
    horizontal spines each) and coloured data drawn in it; returns the grey image."""
    grey = read_png(path)
    assert grey.shape[0] >= min_size[0] and grey.shape[1] >= min_size[1], grey.shape
    horizontal, vertical = frame_lines(grey)
    assert horizontal == 2 * panels, (horizontal, panels)
    assert vertical >= 2, vertical
    rgb = imread(str(path))[..., :3]
    coloured = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3  # lines and markers, not black/white/grey
    assert coloured.mean() > 1e-3, "no data drawn"
    return grey
