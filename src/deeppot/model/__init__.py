"""Models: descriptor + fitting -> energy (forces, virial) or an atomic tensor; serialization.

A model dict (spec section 5) is loaded by the class its fitting's ``type`` names (``MODELS``), as in
DeePMD-kit's ``BaseModel.deserialize``.
"""

from deeppot.model.energy_model import EnergyModel
from deeppot.model.tensor_model import DipoleModel, PolarModel, TensorModel

MODELS = {"ener": EnergyModel, "dipole": DipoleModel, "polar": PolarModel}
"""DeePMD-kit fitting type -> model class."""


def model_class(fitting_type: str):
    """The model class of a fitting type; ValueError naming the supported ones otherwise."""
    if fitting_type not in MODELS:
        raise ValueError(f"fitting type {fitting_type!r} is not supported; supported: {', '.join(MODELS)}")
    return MODELS[fitting_type]


def data_label_options(config) -> dict:
    """The extra ``DeepmdSystem.load`` options for training the model of a validated ``model`` section: a
    tensor model's labels (global and atomic) and selected types; nothing for an energy model."""
    cls = model_class(config.fitting_net.type)
    if not issubclass(cls, TensorModel):
        return {}
    selected = [t for t in range(len(config.type_map)) if t not in config.atom_exclude_types]
    return dict(tensor_labels=[cls.label_name, "atom_" + cls.label_name],
                sel_type=selected if config.atom_exclude_types else None)


def deserialize_model(data: dict):
    """A model from DeePMD-kit's serialized dict; a DP/ZBL dict (type "zbl") is a DPZBLModel, otherwise the
    fitting's ``type`` picks the class."""
    if data.get("type") == "zbl":
        from deeppot.model.zbl_model import DPZBLModel

        return DPZBLModel.deserialize(data)
    return model_class(data["fitting"].get("type", "ener")).deserialize(data)


__all__ = ["MODELS", "DipoleModel", "EnergyModel", "PolarModel", "TensorModel", "data_label_options",
           "deserialize_model", "model_class"]
