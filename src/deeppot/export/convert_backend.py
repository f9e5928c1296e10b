"""Models between DeePMD-kit's ``.dp`` file, deeppot's frozen ``.pth`` and checkpoints, and DeePMD-kit PyTorch
checkpoints, as ``dp convert-backend`` moves them between backends (spec sections 1 and 5).

Every file is read into one portable form, ``{"model": serialized model dict, "model_def_script": the model
section of input.json, "min_nbor_dist": Angstrom or -1}``, and written from it. The kind of file is chosen by
suffix, as DeePMD-kit does:

- ``.dp`` (and its YAML form ``.yaml``/``.yml``): read and written (:mod:`deeppot.export.dp_file`);
- ``.pth``: a deeppot frozen model, read and written (:mod:`deeppot.export.model_file`; what ``deeppot freeze``
  writes, so LAMMPS, ASE and ``deeppot test`` take it);
- ``.pt``: read: a deeppot training checkpoint or a DeePMD-kit PyTorch checkpoint
  (:mod:`deeppot.export.deepmd_checkpoint`), told apart by their content; written: a deeppot checkpoint at step
  0 (model section, weights, min_nbor_dist; no optimizer state), for ``deeppot train --init-model``, freeze and
  test. Its model section comes from the input's ``model_def_script``, which must describe the model.
"""

from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np

from deeppot.errors import ModelFileError
from deeppot.export.dp_file import DP_SUFFIXES, read_dp_file, write_dp_file

READ_SUFFIXES = (*DP_SUFFIXES, ".pth", ".pt")
WRITE_SUFFIXES = (*DP_SUFFIXES, ".pth", ".pt")
_OTHER_BACKENDS = {".pb": "TensorFlow", ".savedmodel": "JAX", ".jax": "JAX", ".hlo": "JAX",
                   ".pt2": "PyTorch-exportable", ".pte": "PyTorch-exportable", ".json": "Paddle", ".pd": "Paddle",
                   ".savedmodeltf": "TensorFlow 2"}


def check_suffix(path: Path, allowed: Tuple[str, ...], role: str) -> None:
    """ModelFileError unless ``path`` ends in one of ``allowed``; names DeePMD-kit's backend of a known suffix."""
    suffix = Path(path).suffix
    if suffix in allowed:
        return
    other = f" ({_OTHER_BACKENDS[suffix]} model files of DeePMD-kit)" if suffix in _OTHER_BACKENDS else ""
    hint = (" DeePMD-kit's 'dp convert-backend' turns its other backends' files into .dp, which deeppot reads."
            if suffix in _OTHER_BACKENDS else "")
    raise ModelFileError(f"{path}: deeppot cannot {role} '{suffix or '(no suffix)'}' files{other}; it {role}s "
                         f"{', '.join(allowed)}.{hint}")


def read_portable(path: Path) -> Dict[str, Any]:
    """The portable form of the model file ``path`` (see the module docstring)."""
    path = Path(path)
    check_suffix(path, READ_SUFFIXES, "read")
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if path.suffix in DP_SUFFIXES:
        return _from_dp(path, read_dp_file(path))
    return _from_torch_file(path)


def write_portable(path: Path, content: Dict[str, Any], model=None, source: Path = None) -> None:
    """Write the portable form ``content`` as the model file ``path`` (its suffix picks the kind), atomically;
    ``model``: deeppot's model of it, if already built (a .pth is written from it); ``source``: where ``content``
    was read, named in errors."""
    path = Path(path)
    check_suffix(path, WRITE_SUFFIXES, "write")
    if path.suffix in DP_SUFFIXES:
        write_dp_file(path, {"model": content["model"], "model_def_script": content["model_def_script"],
                             "@variables": {"min_nbor_dist": float(content["min_nbor_dist"])}})
        return
    model = model if model is not None else model_from_portable(content, path)
    if path.suffix == ".pt":
        _write_checkpoint(path, content, model, source or path)
        return
    from deeppot.export.model_file import save_model_file

    save_model_file(model, content["model_def_script"], path)


def convert_backend(source: Path, target: Path) -> Dict[str, Any]:
    """Read ``source`` and write its model as ``target``; returns the portable form moved. Both suffixes are
    checked, and the model rebuilt in deeppot, before anything is written."""
    check_suffix(Path(source), READ_SUFFIXES, "read")
    check_suffix(Path(target), WRITE_SUFFIXES, "write")
    content = read_portable(source)
    model = model_from_portable(content, source)  # refuses a model deeppot cannot run, whatever the output kind
    write_portable(target, content, model, Path(source))
    return content


def model_from_portable(content: Dict[str, Any], source: Path):
    """deeppot's eager model of a portable form (read from ``source``, named in errors), min_nbor_dist set."""
    from deeppot.model import deserialize_model

    data = content["model"]
    if ("descriptor" not in data or "fitting" not in data) and data.get("type") != "zbl":  # zbl: DP + pair table
        kind = data.get("type", "?")
        raise ModelFileError(f"{source}: a DeePMD-kit model of type '{kind}' without one descriptor and fitting "
                             "(multi-task, linear or other composite model); deeppot runs only descriptor + "
                             "fitting models")
    try:
        model = deserialize_model(data)
    except (ValueError, KeyError, TypeError) as exc:
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise ModelFileError(f"{source}: deeppot cannot run this model: {detail}") from None
    model.min_nbor_dist = float(content["min_nbor_dist"])
    return model.eval()


def _write_checkpoint(path: Path, content: Dict[str, Any], model, source: Path) -> None:
    """A deeppot training checkpoint (step 0) of ``model``, its model section validated from the model_def_script
    of ``source``."""
    import torch

    from deeppot.export.deepmd_checkpoint import deeppot_model_config
    from deeppot.model.build import build_model
    from deeppot.train.checkpoint import atomic_write

    if getattr(model.descriptor, "compressed", False):
        raise ModelFileError(f"{path}: a compressed model cannot be a training checkpoint (its embedding nets are "
                             "tables); write a .pth instead")
    config = deeppot_model_config(content["model_def_script"] or {}, f"{source} (model_def_script)",
                                  f"{path}: a checkpoint needs the model section of input.json (model_def_script), "
                                  "and this one does not validate (write a .pth instead, which needs none)")
    built = build_model(config)
    try:
        built.load_state_dict(model.state_dict())
    except RuntimeError:
        raise ModelFileError(f"{path}: the input's model section (model_def_script) does not describe its model "
                             "(different networks); a checkpoint needs both to agree; write a .pth instead") from None
    state = {"model_params": config.model_dump(mode="json"), "model": built.state_dict(), "step": 0,
             "min_nbor_dist": float(content["min_nbor_dist"])}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_dp_as_model(path: Path) -> Tuple[Any, Dict]:
    """(eager model in eval mode, metadata) of a ``.dp`` file, as ``load_model`` returns for a frozen file, so
    DeepPot, ``deeppot test`` and ASE take a ``.dp`` directly (DeePMD-kit's DeepPot does)."""
    content = read_portable(path)
    model = model_from_portable(content, path)
    meta = {"type_map": list(model.type_map), "rcut": float(model.rcut), "sel": list(model.sel),
            "min_nbor_dist": model.min_nbor_dist, "model_def_script": content["model_def_script"],
            "model": content["model"]}
    return model, meta


def _from_dp(path: Path, data: Dict[str, Any]) -> Dict[str, Any]:
    script = data.get("model_def_script") or {}
    if isinstance(script, dict) and "model_dict" in script:
        raise ModelFileError(f"{path}: a multi-task DeePMD-kit model (branches "
                             f"{', '.join(map(repr, script['model_dict']))}); deeppot has no multi-task models")
    min_nbor = (data.get("@variables") or {}).get("min_nbor_dist")
    return {"model": data["model"], "model_def_script": script,
            "min_nbor_dist": -1.0 if min_nbor is None else float(np.asarray(min_nbor))}


def _from_torch_file(path: Path) -> Dict[str, Any]:
    from deeppot.train.checkpoint import archive_kind

    kind = archive_kind(path)
    if kind == "frozen":
        return _from_frozen(path)
    if kind == "torchscript":
        raise ModelFileError(f"{path}: a TorchScript model without deeppot's metadata (DeePMD-kit's 'dp --pt freeze' "
                             "output?); turn it into a .dp with DeePMD-kit ('dp convert-backend "
                             f"{path.name} model.dp'), which deeppot reads, or give its checkpoint model.ckpt-N.pt")
    if kind != "checkpoint":
        raise ModelFileError(f"{path}: neither a deeppot model nor a PyTorch checkpoint (not a torch archive; the "
                             "file may be truncated or of another kind)")
    return _from_checkpoint(path)


def _from_frozen(path: Path) -> Dict[str, Any]:
    from deeppot.export.model_file import read_model_metadata

    meta = read_model_metadata(path)
    if meta.get("modifier"):
        raise ModelFileError(f"{path}: the model carries a '{meta.get('modifier_type', 'DPLR')}' modifier, which "
                             "convert-backend does not carry (DeePMD-kit's .dp format has no place for one); the "
                             "output would lose it")
    return {"model": meta["model"], "model_def_script": meta.get("model_def_script", {}),
            "min_nbor_dist": float(meta.get("min_nbor_dist", -1.0))}


def _from_checkpoint(path: Path) -> Dict[str, Any]:
    import warnings

    import torch

    from deeppot.export.deepmd_checkpoint import is_deepmd_checkpoint, read_deepmd_checkpoint

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's own text is about pickles, not about this file
        raise ModelFileError(f"{path}: not a readable checkpoint ({exc.__class__.__name__}; the file may be truncated "
                             "or written by another program)") from None
    if is_deepmd_checkpoint(state):
        return read_deepmd_checkpoint(path, state)
    from deeppot.export.freeze import model_from_checkpoint

    model, params = model_from_checkpoint(str(path))
    if params.get("modifier"):
        raise ModelFileError(f"{path}: the model has a modifier (model/modifier), which convert-backend does not "
                             "carry (DeePMD-kit's .dp format has no place for one); the output would lose it")
    return {"model": model.serialize(), "model_def_script": params, "min_nbor_dist": float(model.min_nbor_dist)}
