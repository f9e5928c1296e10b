"""Build a model from the validated, resolved ``model`` section of input.json."""

from pathlib import Path

from deeppot.config import ModelConfig
from deeppot.descriptor import descriptor_class
from deeppot.errors import ConfigError
from deeppot.fitting.energy import EnergyFitting
from deeppot.model.energy_model import EnergyModel
from deeppot.model.pair_table import PairTableEnergy
from deeppot.model.tensor_model import DipoleModel, PolarModel
from deeppot.model.zbl_model import DPZBLModel


def build_model(config: ModelConfig) -> EnergyModel:
    """The model of a resolved model section (every sel a number: :meth:`ModelConfig.resolve_sel`), as
    training makes it and checkpoints, out.json and frozen files hold it; its fitting type picks the builder."""
    return BUILDERS[config.fitting_net.type](config)


def build_energy_model(config: ModelConfig) -> EnergyModel:
    """An energy model (fitting type "ener")."""
    desc_cfg, fit_cfg = config.descriptor, config.fitting_net
    if fit_cfg.atom_ener or fit_cfg.dim_case_embd or fit_cfg.default_fparam is not None:
        raise ConfigError(
            "model/fitting_net: atom_ener, dim_case_embd and default_fparam are not implemented yet; remove them"
        )
    ntypes = len(config.type_map)
    descriptor = descriptor_class(desc_cfg.type).from_config(desc_cfg, ntypes, config.type_embedding)
    nlayers = len(fit_cfg.neuron) + 1
    trainable = fit_cfg.trainable if isinstance(fit_cfg.trainable, list) else [fit_cfg.trainable] * nlayers
    fitting = EnergyFitting(
        ntypes=ntypes,
        dim_descrpt=descriptor.dim_out,
        neuron=fit_cfg.neuron,
        resnet_dt=fit_cfg.resnet_dt,
        numb_fparam=fit_cfg.numb_fparam,
        numb_aparam=fit_cfg.numb_aparam,
        activation_function=fit_cfg.activation_function,
        precision=fit_cfg.resolved_precision,
        trainable=trainable,
        rcond=fit_cfg.rcond,
        seed=fit_cfg.seed,
        mixed_types=descriptor.shared_fitting,
        use_aparam_as_mask=fit_cfg.use_aparam_as_mask,
    )
    exclusions = dict(atom_exclude_types=config.atom_exclude_types, pair_exclude_types=config.pair_exclude_types,
                      preset_out_bias=config.preset_out_bias)
    if config.use_srtab is not None:
        return build_zbl_model(config, descriptor, fitting, exclusions)
    return EnergyModel(descriptor, fitting, config.type_map, **exclusions)


def build_zbl_model(config: ModelConfig, descriptor, fitting: EnergyFitting, exclusions: dict) -> DPZBLModel:
    """DP/ZBL (model/use_srtab): the table file read for the DP part's rcut and neighbor count. A table file that
    is gone (a checkpoint moved elsewhere) gives an empty table, which the checkpoint's state fills."""
    ntypes, table_file = len(config.type_map), Path(config.use_srtab)
    if table_file.is_file():
        table = PairTableEnergy.from_file(table_file, ntypes, descriptor.rcut, sum(descriptor.sel), "model/use_srtab")
    else:
        table = PairTableEnergy.placeholder(ntypes, descriptor.rcut, sum(descriptor.sel))
    return DPZBLModel(descriptor, fitting, config.type_map, table, config.sw_rmin, config.sw_rmax,
                      config.smin_alpha, **exclusions)


BUILDERS = {"ener": build_energy_model, "dipole": DipoleModel.from_config, "polar": PolarModel.from_config}
"""Fitting type -> builder of its model from the resolved model section."""
