"""input.json options that validate (they are DeePMD-kit keys) but that deeppot does not act on yet.

Options that would change what is trained are refused before any work starts; options that only
change logging or bookkeeping are reported with a warning.
"""

import logging
from typing import List

from deeppot.config import EnerLossConfig, InputConfig, TrainingConfig
from deeppot.errors import ConfigError
from deeppot.nn.precision import mixed_precision_problems

log = logging.getLogger("deeppot")

# loss keys whose non-default value changes the objective
REFUSED_LOSS_KEYS = (
    "start_pref_ae", "limit_pref_ae", "start_pref_pf", "limit_pref_pf", "use_default_pf", "relative_f",
    "enable_atom_ener_coeff", "start_pref_gf", "limit_pref_gf", "numb_generalized_coord", "start_pref_h",
    "limit_pref_h", "use_huber", "loss_func", "f_use_norm",
)
# training keys accepted for compatibility but without effect
IGNORED_TRAINING_KEYS = (
    "stat_file", "disp_avg", "profiling", "enable_profiler",
    "change_bias_after_training", "enable_ema", "zero_stage", "ckpt_keep_ratio",
)
IGNORED_DATA_KEYS = ("rglob_patterns", "min_pair_dist")


def check_supported(config: InputConfig, source: str = "input.json") -> None:
    """Raise ConfigError for refused options; log a warning for ignored ones."""
    default_loss = EnerLossConfig()
    problems: List[str] = [
        f"{source}: loss/{key}: not supported by deeppot yet; remove it or set it to "
        f"{getattr(default_loss, key)!r}"
        for key in REFUSED_LOSS_KEYS
        if key in type(config.loss).model_fields and getattr(config.loss, key) != getattr(default_loss, key)
    ]
    if config.training.mixed_precision is not None:
        problems += mixed_precision_problems(config.model, source)
    if problems:
        raise ConfigError("\n".join(problems))
    set_fields = config.training.model_fields_set
    for key in IGNORED_TRAINING_KEYS:
        if key in set_fields and getattr(config.training, key) != TrainingConfig.model_fields[key].default:
            log.warning("%s: training/%s is accepted for DeePMD-kit compatibility but has no effect in deeppot",
                        source, key)
    for section in ("training_data", "validation_data"):
        data = getattr(config.training, section)
        for key in IGNORED_DATA_KEYS if data is not None else ():
            if key in data.model_fields_set:
                log.warning("%s: training/%s/%s has no effect in deeppot", source, section, key)
