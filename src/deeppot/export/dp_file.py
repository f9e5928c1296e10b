"""DeePMD-kit's backend-independent model file (``.dp``), read and written without DeePMD-kit.

Layout (spec section 5; DeePMD-kit 3.2's ``deepmd.dpmodel.utils.serialization``): an HDF5 file whose root
attribute ``json`` holds one JSON object::

    {"software", "version", "time", "backend", "model": <serialized model dict>,
     "model_def_script": <the model section of input.json>, "@variables": {"min_nbor_dist": ...}}

Every value found under an ``@variables`` key (at any depth, including list items) is stored as a dataset
``/variable_NNNN`` (numbered in the order met) and replaced in the JSON by that dataset's path; ``null`` stays
``null``. Reading reverses this: each such string becomes the dataset's array (numpy, dtype as stored).

``.yaml``/``.yml`` (DeePMD-kit's text form of the same dict) hold each array inline as
``{"@class": "np.ndarray", "@is_variable": true, "@version": 1, "dtype": ..., "value": [...]}``; they need PyYAML.
"""

import datetime
import json
from pathlib import Path
from typing import Any, Callable, Dict

import h5py
import numpy as np

from deeppot import __version__
from deeppot.errors import ModelFileError
from deeppot.train.checkpoint import atomic_write

DP_SUFFIX = ".dp"
YAML_SUFFIXES = (".yaml", ".yml")
DP_SUFFIXES = (DP_SUFFIX, *YAML_SUFFIXES)
VARIABLES_KEY = "@variables"


def _map_variables(node: Any, convert: Callable[[Any], Any], in_variables: bool = False) -> Any:
    """A copy of ``node`` with every non-None value under a ``@variables`` key replaced by ``convert(value)``."""
    if isinstance(node, dict):
        return {key: _map_variables(value, convert, in_variables or key == VARIABLES_KEY)
                for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return [_map_variables(value, convert, in_variables) for value in node]
    if node is None or not in_variables:
        return _plain(node)
    return convert(node)


def _plain(value: Any) -> Any:
    """numpy scalars outside ``@variables`` (e.g. an rcut read as np.float64) as JSON-able Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        raise ModelFileError(f"an array outside '{VARIABLES_KEY}' (shape {value.shape}) cannot be written to a "
                             ".dp file; DeePMD-kit stores arrays only under '@variables'")
    return value


def write_dp_file(path: Path, content: Dict[str, Any], backend: str = "deeppot") -> None:
    """Write ``content`` (keys ``model``, ``model_def_script``, ``@variables``: {``min_nbor_dist``}) as a
    ``.dp`` file (atomically), with ``software``/``version``/``time``/``backend`` in front as DeePMD-kit does."""
    header = {"software": "deeppot", "version": __version__,
              "time": str(datetime.datetime.now(tz=datetime.timezone.utc)), "backend": backend}
    if Path(path).suffix in YAML_SUFFIXES:
        yaml = _yaml(path)
        body = _map_variables(content, _inline_array)
        atomic_write(Path(path), lambda tmp: Path(tmp).write_text(yaml.safe_dump({**header, **body})))
        return

    def write(tmp: str) -> None:
        count = 0
        with h5py.File(tmp, "w") as handle:
            def store(value):
                nonlocal count
                name = f"variable_{count:04d}"
                count += 1
                return handle.create_dataset(name, data=np.asarray(value)).name

            body = _map_variables(content, store)
            handle.attrs["json"] = json.dumps({**header, **body}, separators=(",", ":"))

    atomic_write(Path(path), write)


def read_dp_file(path: Path) -> Dict[str, Any]:
    """The whole JSON object of a ``.dp`` file with its arrays restored (numpy; 0-d arrays for scalars).
    ModelFileError naming the file if it is missing, not HDF5, or not laid out as DeePMD-kit writes it."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if path.suffix in YAML_SUFFIXES:
        return _checked(path, _read_yaml(path))
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise ModelFileError(f"{path}: not a DeePMD-kit .dp model (not an HDF5 file; the file may be truncated or "
                             "another kind of file named .dp)") from None
    with handle:
        if "json" not in handle.attrs:
            raise ModelFileError(f"{path}: an HDF5 file without the 'json' attribute of a DeePMD-kit .dp model "
                                 "(an HDF5 data set or another program's file?)")
        try:
            content = json.loads(handle.attrs["json"])
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: the 'json' attribute of this .dp file is not valid JSON ({exc})") from None

        def load(name):
            if not isinstance(name, str) or name not in handle:
                raise ModelFileError(f"{path}: the .dp file names an array {name!r} it does not contain "
                                     "(a truncated or hand-edited file?)")
            return np.asarray(handle[name][()]).copy()

        content = _map_variables(content, load)
    return _checked(path, content)


def _checked(path: Path, content: Any) -> Dict[str, Any]:
    if not isinstance(content, dict) or not isinstance(content.get("model"), dict):
        raise ModelFileError(f"{path}: a {path.suffix} file without a 'model' dict; not a DeePMD-kit model file")
    return content


def _yaml(path: Path):
    try:
        import yaml  # optional: only DeePMD-kit's YAML model files need it
    except ImportError:
        raise ModelFileError(f"{path}: DeePMD-kit's YAML model files need PyYAML; pip install pyyaml, or use .dp")
    return yaml


def _inline_array(value: Any) -> Any:
    """An array as DeePMD-kit's YAML form writes it; other values (e.g. a float) as they are."""
    if not isinstance(value, np.ndarray):
        return _plain(value)
    return {"@class": "np.ndarray", "@is_variable": True, "@version": 1, "dtype": value.dtype.name,
            "value": value.tolist()}


def _read_yaml(path: Path) -> Any:
    yaml = _yaml(path)
    try:
        content = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: not a DeePMD-kit YAML model ({exc.__class__.__name__})") from None

    def arrays(node):
        if isinstance(node, dict):
            if node.get("@class") == "np.ndarray":
                return np.asarray(node["value"], dtype=np.dtype(node["dtype"]))
            return {key: arrays(value) for key, value in node.items()}
        if isinstance(node, list):
            return [arrays(value) for value in node]
        return node

    return arrays(content)
