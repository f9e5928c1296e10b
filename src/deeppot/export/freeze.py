"""Checkpoint -> frozen model file."""

from pathlib import Path
from typing import Optional

from deeppot.config import ModelConfig
from deeppot.export.model_file import load_model, save_model_file
from deeppot.model.build import build_model
from deeppot.model.energy_model import EnergyModel
from deeppot.nn.precision import enable_mixed_precision
from deeppot.train.checkpoint import archive_kind, load_checkpoint


def model_from_checkpoint(checkpoint_path: str) -> tuple:
    """(EnergyModel with trained weights, its resolved model section) from a checkpoint file or training folder."""
    state = load_checkpoint(checkpoint_path)
    params = state["model_params"]
    model: EnergyModel = build_model(ModelConfig.model_validate(params))
    model.load_state_dict(state["model"])
    enable_mixed_precision(model, state.get("mixed_precision"))
    model.min_nbor_dist = float(state.get("min_nbor_dist", -1.0))
    return model, params


def checkpoint_modifier(params: dict) -> Optional[dict]:
    """The serialized modifier (DPLR's, with its dipole model read from model/modifier/model_name) of a
    checkpoint's resolved model section, or None."""
    from deeppot.modifier import build_modifier  # the modifier loads its dipole model through this module

    modifier = build_modifier(ModelConfig.model_validate(params), "the checkpoint's model section")
    return None if modifier is None else modifier.serialize()


def load_model_or_checkpoint(path: Path) -> tuple:
    """(eager model in eval mode, metadata) from a frozen file or a training checkpoint; a checkpoint's
    metadata holds what a frozen file's would: type_map, rcut, sel, min_nbor_dist, model_def_script."""
    if Path(path).suffix == ".dp":  # DeePMD-kit's file, read directly as DeePMD-kit's DeepPot does
        from deeppot.export.convert_backend import load_dp_as_model

        return load_dp_as_model(Path(path))
    if archive_kind(path) != "checkpoint":
        return load_model(path)
    model, params = model_from_checkpoint(str(path))
    meta = {"type_map": list(model.type_map), "rcut": float(model.rcut), "sel": list(model.sel),
            "min_nbor_dist": model.min_nbor_dist, "model_def_script": params}
    modifier = checkpoint_modifier(params)
    if modifier is not None:
        meta["modifier"] = modifier
    return model.eval(), meta


def freeze(checkpoint_path: str, output: Path, aoti: bool = False) -> Path:
    """Write the checkpoint's model as one frozen file (``.pth`` appended if missing); with ``aoti`` the
    file also carries an AOTInductor-compiled MD-engine entry point (deeppot.export.aoti). A model section with
    a modifier (DPLR) puts the modifier and its dipole model into the file."""
    output = Path(output)
    if output.suffix != ".pth":
        output = output.with_name(output.name + ".pth")
    model, params = model_from_checkpoint(checkpoint_path)
    save_model_file(model, params, output, aoti=aoti, modifier=checkpoint_modifier(params))
    return output
