"""Writing matplotlib figures: the Agg renderer (no display needed, no global pyplot state), atomic files."""

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from deeppot.errors import OptionError
from deeppot.train.checkpoint import atomic_write


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches drawn by Agg."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def check_figure_path(path: Path, option: str) -> Path:
    """``path`` if matplotlib can write its format (by suffix), else an OptionError naming ``option``;
    called before any work starts."""
    path = Path(path)
    formats = FigureCanvasAgg.get_supported_filetypes()
    suffix = path.suffix.lstrip(".").lower()
    if suffix not in formats:
        raise OptionError(f"{option} {path}: unknown figure format {path.suffix or '(no suffix)'!r}; end the file "
                          f"name with one of {', '.join('.' + f for f in sorted(formats))}")
    if not path.parent.is_dir():
        raise OptionError(f"{option} {path}: folder {path.parent} does not exist; create it or choose another path")
    return path


def save_figure(figure: Figure, path: Path, dpi: int = 150) -> Path:
    """Write ``figure`` to ``path`` atomically, in the format its suffix names."""
    path = Path(path)
    atomic_write(path, lambda tmp: figure.savefig(tmp, format=path.suffix.lstrip(".").lower(), dpi=dpi))
    return path
