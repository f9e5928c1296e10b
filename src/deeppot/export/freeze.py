"""Checkpoint -> frozen model file."""

from pathlib import Path

from deeppot.config import ModelConfig
from deeppot.export.model_file import save_model_file
from deeppot.model.build import build_model
from deeppot.model.energy_model import EnergyModel
from deeppot.train.checkpoint import load_checkpoint


def model_from_checkpoint(checkpoint_path: str) -> tuple:
    """(EnergyModel with trained weights, its model section) from a checkpoint file or training folder."""
    state = load_checkpoint(checkpoint_path)
    params = state["model_params"]
    config = ModelConfig.model_validate(params)
    model: EnergyModel = build_model(config, list(params["descriptor"]["sel"]))
    model.load_state_dict(state["model"])
    model.min_nbor_dist = float(state.get("min_nbor_dist", -1.0))
    return model, params


def freeze(checkpoint_path: str, output: Path) -> Path:
    output = Path(output)
    if output.suffix != ".pth":
        output = output.with_name(output.name + ".pth")
    model, params = model_from_checkpoint(checkpoint_path)
    save_model_file(model, params, output)
    return output
