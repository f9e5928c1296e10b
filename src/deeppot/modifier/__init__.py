"""Modifiers (DeePMD-kit's ``model/modifier``), registered by DeePMD-kit type name: a term of energy, forces and
virial outside the fitted model, taken out of the training labels and added back in evaluation.

Adding a modifier: one module here with a :class:`Modifier` subclass, its entry in ``MODIFIERS`` and its config
section in :mod:`deeppot.config.modifier` (same name).
"""

import logging
import time
from pathlib import Path
from typing import List, Optional

from deeppot.config.base import TypeRegistry
from deeppot.config.modifier import MODIFIERS as MODIFIER_CONFIGS
from deeppot.errors import ConfigError, DeeppotError
from deeppot.modifier.base import Modifier
from deeppot.modifier.dipole_charge import DipoleChargeModifier, charge_map_problems

MODIFIERS = TypeRegistry(
    what="modifier",
    classes={cls.type_name: cls for cls in (DipoleChargeModifier,)},
    aliases=MODIFIER_CONFIGS.aliases,
)
"""DeePMD-kit modifier type -> modifier class."""

log = logging.getLogger("deeppot")


def deserialize_modifier(data: dict) -> Modifier:
    """A modifier from its serialized dict (its ``type`` picks the class)."""
    return MODIFIERS.resolve(data.get("type"))[1].deserialize(data)


def build_modifier(model_config, source: str = "input.json") -> Optional[Modifier]:
    """The modifier of a validated ``model`` section (None without one), its dipole model loaded from
    ``model_name``. ConfigError, naming the key, for a missing or unsuitable file or charge maps that do not fit."""
    cfg = model_config.modifier
    if cfg is None:
        return None
    where = f"{source}: model/modifier"
    if model_config.fitting_net.type != "ener":
        raise ConfigError(f"{where}: a modifier corrects energies, forces and virials; it goes with an energy model "
                          f"(fitting_net type \"ener\"), not '{model_config.fitting_net.type}'; remove it")
    dipole = _load_dipole_model(Path(cfg.model_name), where)
    if list(dipole.type_map) != list(model_config.type_map):
        raise ConfigError(f"{where}/model_name: {cfg.model_name} has type_map {dipole.type_map}, model/type_map is "
                          f"{model_config.type_map}; train the dipole model with the same type_map")
    problems = charge_map_problems(dipole, cfg.model_charge_map, cfg.sys_charge_map)
    if problems:
        keys = ["model_charge_map" if p.startswith("model") else "sys_charge_map" for p in problems]
        raise ConfigError("\n".join(f"{where}/{k}: {p}" for k, p in zip(keys, problems)))
    return DipoleChargeModifier(dipole, cfg.model_charge_map, cfg.sys_charge_map, cfg.ewald_h, cfg.ewald_beta,
                                cfg.model_name)


def modify_training_data(model_config, systems: List) -> None:
    """Take the modifier of a validated ``model`` section (if any) out of the energy, force and virial labels of
    the loaded training and validation ``systems`` (:class:`deeppot.data.DeepmdSystem`), once, in memory; logs
    how long it took. What is then fitted is the short-range remainder."""
    modifier = build_modifier(model_config)
    if modifier is None:
        return
    start = time.perf_counter()
    for system in systems:
        modifier.modify_system(system)
    frames = sum(system.nframes for system in systems)
    log.info("modifier %s: removed from the labels of %d frames in %d system(s) in %.1f s", modifier.type_name,
             frames, len(systems), time.perf_counter() - start)


def _load_dipole_model(path: Path, where: str):
    """The dipole model in a frozen file (or training checkpoint) at ``path``."""
    from deeppot.export.freeze import load_model_or_checkpoint  # export imports this package
    from deeppot.model.tensor_model import DipoleModel

    if not path.is_file():
        raise ConfigError(f"{where}/model_name: {path} not found; train a dipole model (fitting_net type \"dipole\") "
                          "on the Wannier centroids, freeze it and give its path (relative to input.json)")
    try:
        model, _ = load_model_or_checkpoint(path)
    except DeeppotError as exc:
        raise ConfigError(f"{where}/model_name: {exc}") from None
    if not isinstance(model, DipoleModel):
        raise ConfigError(f"{where}/model_name: {path} holds a '{model.output_type}' model, not a dipole model; "
                          "the dipole_charge modifier needs a model with fitting_net type \"dipole\" that predicts "
                          "the Wannier centroids (atomic_dipole.npy)")
    if model.fitting.numb_fparam or model.fitting.numb_aparam:
        raise ConfigError(f"{where}/model_name: {path} takes fparam/aparam, which the dipole_charge modifier does "
                          "not pass; use a dipole model without them")
    return model


__all__ = ["MODIFIERS", "DipoleChargeModifier", "Modifier", "build_modifier", "deserialize_modifier",
           "modify_training_data"]
