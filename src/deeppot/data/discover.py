"""Turn the ``systems`` entry of input.json into a list of system folders."""

from __future__ import annotations

from pathlib import Path

from deeppot.errors import DataError


def expand_systems(systems: str | list[str], base: Path | None = None) -> list[str]:
    """System folders named by ``systems``.

    Parameters
    ----------
    systems
        A single path: searched recursively (itself included) for folders holding
        ``type.raw``, returned sorted. A list: taken as given, in order.
    base
        Folder that relative paths are resolved against (e.g. the folder of input.json);
        the current directory when None.

    Raises
    ------
    DataError
        When a path does not exist or a search finds no system.
    """
    root = Path.cwd() if base is None else Path(base)
    if isinstance(systems, str):
        top = root / systems
        if not top.is_dir():
            raise DataError(f"{top}: data folder not found. Check 'systems' in input.json.")
        found = sorted(str(p.parent) for p in top.rglob("type.raw") if p.is_file())
        if not found:
            raise DataError(
                f"{top}: no data system found (no folder below it holds a type.raw file). "
                "Point 'systems' at folders in the deepmd/npy format."
            )
        return found
    if not systems:
        raise DataError("'systems' is an empty list. Name at least one data system folder.")
    out = []
    for entry in systems:
        path = root / entry
        if not path.is_dir():
            raise DataError(f"{path}: data system folder not found. Check 'systems' in input.json.")
        out.append(str(path))
    return out
