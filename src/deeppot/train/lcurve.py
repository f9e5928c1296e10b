"""``lcurve.out`` in DeePMD-kit's PyTorch format (spec 3.14).

Columns: step, then for each metric name sorted alphabetically a ``<name>_val <name>_trn`` pair
(``_trn`` only without validation data), then lr. Formats ``%7d``, ``%11.2e``, lr ``%8.1e``.
"""

from pathlib import Path
from typing import Dict, List, Optional


class LcurveWriter:
    def __init__(self, path: Path, metric_names: List[str], has_validation: bool, restart_step: Optional[int] = None):
        """Open for writing; on restart keep the rows up to ``restart_step`` and append after them."""
        self.path = Path(path)
        self.names = sorted(metric_names)
        self.has_validation = has_validation
        if restart_step is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines(keepends=True) if _row_step(line) <= restart_step]
            self.path.write_text("".join(kept))
            self.file = open(self.path, "a")
        else:
            self.file = open(self.path, "w")
            self.file.write(self._header())
            self.file.flush()

    def _header(self) -> str:
        text = "# {:5s}".format("step")
        for name in self.names:
            if self.has_validation:
                text += "   %11s %11s" % (name + "_val", name + "_trn")
            else:
                text += "   %11s" % (name + "_trn")
        text += "   {:8s}\n".format("lr")
        text += "# If there is no available reference data, rmse_*_{val,trn} will print nan\n"
        return text

    def write(self, step: int, train: Dict[str, float], valid: Optional[Dict[str, float]], lr: float) -> None:
        row = "%7d" % step
        for name in self.names:
            if self.has_validation:
                row += "   %11.2e %11.2e" % (valid.get(name, float("nan")), train.get(name, float("nan")))
            else:
                row += "   %11.2e" % train.get(name, float("nan"))
        row += "   %8.1e\n" % lr
        self.file.write(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "LcurveWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _row_step(line: str) -> int:
    """Step of a data row; header lines count as step -1 so they are always kept."""
    if line.startswith("#") or not line.strip():
        return -1
    return int(line.split()[0])
