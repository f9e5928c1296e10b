"""Fine-tuning and output-bias refits (DeePMD-kit's ``dp train --finetune`` and ``dp change-bias``).

- :func:`refit_output_bias`: the per-type output bias (``out_bias``) refitted on sampled frames, in DeePMD-kit's two
  modes: "change" (``change-by-statistic``: least squares on label - prediction, added to the bias) and "set"
  (``set-by-statistic``: least squares on the labels, spec 3.11). Energy and tensor (dipole, polar) models.
- :func:`remap_model_types`: a serialized model dict (spec section 5) with its type-dependent parameters (out_bias,
  descriptor statistics, per-type networks, type-embedding rows, exclusions) moved to another type_map, by
  element name. Mixed-type descriptors (se_atten, se_atten_v2) take any reordering or subset, as DeePMD-kit's
  ``change_type_map``; type-blocked ones (se_e2_a, se_e2_r, se_e3, and se_e2_a with a type embedding) take a
  reordering only (DeePMD-kit refuses both): dropping an element drops its neighbor block and changes the
  descriptor's normalisation by the neighbor count. A type embedding's one-hot rows move; a residual first layer is
  folded into linear weights (se_atten's) and refused otherwise, as DeePMD-kit. Elements the pretrained model lacks
  are taken by type-embedding models with one fitting net (se_atten, se_atten_v2), as DeePMD-kit: random (seeded)
  type-embedding rows, descriptor statistics from the new data, zero bias before the refit. loc_frame, se_a_mask
  and DP/ZBL models are refused.
- :func:`load_pretrained` / :meth:`Pretrained.apply`: the trainer's ``--finetune`` hook. As in DeePMD-kit, the model
  is input.json's; the pretrained weights and descriptor statistics are copied into it (with ``--model-branch
  RANDOM`` the descriptor's alone, the fitting keeping its fresh initialisation), then the output bias is refitted on
  the first ``data_stat_nbatch`` batches of each training system ("change" mode, "set" with RANDOM). Unlike
  DeePMD-kit, which warns, a descriptor (or, without RANDOM, fitting) section of input.json that differs from the
  pretrained one is an error naming the keys: the weights would not mean the same. ``--use-pretrain-script`` takes
  those sections from the pretrained model instead (:meth:`Pretrained.model_section`). DeePMD-kit's
  ``data_bias_nsample`` is read by its TensorFlow backend only; PT (and deeppot) sample ``data_stat_nbatch``.
"""

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from deeppot import keys
from deeppot.errors import ConfigError, DataError, ModelFileError, OptionError

log = logging.getLogger("deeppot")

BIAS_MODES = ("change", "set")
RANDOM_BRANCH = "RANDOM"
SINGLE_TASK_BRANCHES = ("", "Default")  # what a single-task model answers to, as DeePMD-kit
MIXED_TYPE_DESCRIPTORS = ("dpa1", "se_atten", "se_atten_v2")  # serialized type names: one neighbor block
TYPE_BLOCKED_DESCRIPTORS = ("se_e2_a", "se_r", "se_e2_r", "se_e3")  # one neighbor block (sel entry) per type
PER_TYPE_FITTING_VARIABLES = ("bias_atom_e", "scale", "constant_matrix")  # fitting arrays with a type axis first
IGNORED_SECTION_KEYS = ("@variables", "networks", "trainable", "type_map", "@version", "precision")  # precision: cast


# ---------------------------------------------------------------- output bias
def output_label_names(model) -> List[str]:
    """The labels a model's output bias is fitted to: energy, or a tensor model's global and atomic tensor."""
    label = getattr(model, "label_name", None)
    return [keys.ENERGY] if label is None else [label, "atom_" + label]


def has_output_labels(model, batches: List[Dict]) -> bool:
    return any(batch.get(keys.find_key(name), 0.0) and name in batch
               for batch in batches for name in output_label_names(model))


def _predict(model, batch: Dict) -> Dict[str, np.ndarray]:
    """The model's outputs on a numpy batch, as numpy arrays."""
    from deeppot.train.trainer import batch_to_torch, evaluate_batch  # the trainer imports this module

    with torch.no_grad() if model.output_type != keys.ENERGY else torch.enable_grad():
        pred = evaluate_batch(model, batch_to_torch(batch), False)
    return {name: value.detach().cpu().numpy() for name, value in pred.items()}


def _residual_batch(model, batch: Dict) -> Dict:
    """``batch`` with each output label replaced by label - prediction (eV for energy; the labels' units)."""
    pred = _predict(model, batch)
    out = dict(batch)
    if model.output_type == keys.ENERGY:
        if keys.ENERGY in batch:
            out[keys.ENERGY] = np.asarray(batch[keys.ENERGY]).reshape(-1) - pred[keys.ENERGY].reshape(-1)
        return out
    label, name = model.label_name, model.output_name
    if label in batch:
        out[label] = np.asarray(batch[label]) - pred["global_" + name].reshape(np.shape(batch[label]))
    if "atom_" + label in batch:
        out["atom_" + label] = np.asarray(batch["atom_" + label]) - pred[name].reshape(np.shape(batch["atom_" + label]))
    return out


def refit_output_bias(model, batches: List[Dict], mode: str) -> Tuple[np.ndarray, np.ndarray]:
    """Refit ``model.out_bias`` (1 x ntypes x output_dim) on numpy ``batches`` (with the model's types) in DeePMD-kit's
    "change" or "set" mode; out_std becomes the residual's std. Returns (old bias, new bias), ntypes x output_dim."""
    if mode not in BIAS_MODES:
        raise OptionError(f"--mode {mode!r}: use one of {', '.join(BIAS_MODES)}")
    if not has_output_labels(model, batches):
        raise DataError(f"no frame of the data carries {' or '.join(output_label_names(model))} labels, which the "
                        f"{model.output_type} model's bias is fitted to; give systems with {output_label_names(model)[0]}"
                        ".npy in their sets")
    old = model.out_bias.detach().clone()
    if mode == "set":
        model.compute_output_bias(batches)
    else:
        residual = [_residual_batch(model, batch) for batch in batches]
        with torch.no_grad():
            model.out_bias.zero_()
        model.compute_output_bias(residual)
        with torch.no_grad():
            model.out_bias.add_(old.to(model.out_bias.device))
    old_np = old.cpu().numpy()[0]
    new_np = model.out_bias.detach().cpu().numpy()[0]
    log.info("output bias of %s changed (mode %s) from %s to %s", list(model.type_map), mode,
             old_np.reshape(len(model.type_map), -1).tolist(), new_np.reshape(len(model.type_map), -1).tolist())
    return old_np, new_np


def set_output_bias(model, values: List[float]) -> None:
    """Per-type energy bias (eV) given by the user (``change-bias -b``): one value per type of the model's type_map."""
    if model.output_type != keys.ENERGY:
        raise OptionError(f"-b/--bias-value: user-given bias values are for energy models only (as in DeePMD-kit); "
                          f"this is a {model.output_type} model: refit it on data with -s")
    if len(values) != len(model.type_map):
        raise OptionError(f"-b/--bias-value: give one value per type of the model's type_map {list(model.type_map)}, "
                          f"got {len(values)}")
    with torch.no_grad():
        model.out_bias.copy_(torch.tensor(values, dtype=torch.float64).reshape(model.out_bias.shape))
    log.info("output bias of %s set to %s", list(model.type_map), list(values))


# ------------------------------------------------------------- type remapping
NEW_TYPE_EMBEDDING_SEED = 20240  # seeds the type-embedding rows of new elements (DeePMD-kit draws them unseeded)


def type_index(old: List[str], new: List[str]) -> List[int]:
    """index[i] = position in ``old`` of element ``new[i]``; the k-th element ``old`` lacks gets len(old) + k (a row
    appended to each per-type array before the selection, as DeePMD-kit's ``get_index_between_two_maps``)."""
    missing = [name for name in new if name not in old]
    return [old.index(name) if name in old else len(old) + missing.index(name) for name in new]


def _take(array, index: List[int], nold: int, fill: float, axis: int = 0) -> np.ndarray:
    """``array``'s rows (along ``axis``, of length nold) in the order of ``index``; new types get ``fill``."""
    array = np.asarray(array)
    extra = max(index) + 1 - nold
    if extra > 0:
        shape = list(array.shape)
        shape[axis] = extra
        array = np.concatenate([array, np.full(shape, fill, dtype=array.dtype)], axis=axis)
    return np.take(array, index, axis=axis)


def _takes_new_types(descriptor: dict, fitting: dict) -> bool:
    """New elements need one type embedding (rows can be added) and one fitting net for every type."""
    if descriptor["type"] == "hybrid":
        return all(_takes_new_types(member, fitting) for member in descriptor["list"])
    embedding = descriptor.get("type_embedding")
    return (descriptor["type"] in MIXED_TYPE_DESCRIPTORS and embedding is not None
            and not embedding.get("use_econf_tebd") and fitting["nets"]["ndim"] == 0)


def _remap_atom_types(types: List[int], index: List[int]) -> List[int]:
    return [index.index(t) for t in types if t in index]


def _remap_pairs(pairs: List, index: List[int]) -> List[List[int]]:
    return [[index.index(a), index.index(b)] for a, b in pairs if a in index and b in index]


def _remap_networks(collection: dict, index: List[int], nold: int, symmetric: bool = False) -> dict:
    """A NetworkCollection dict (networks indexed row-major by ndim type indices) for the new types. ``symmetric``:
    a pair's net serves both orders and only the one with descending indices is used (se_e3's (tj, ti), ti <= tj)."""
    ndim, n = collection["ndim"], len(index)
    if ndim > 0:
        nets = collection["networks"]
        old_key = [tuple(index[i] for i in np.unravel_index(flat, (n,) * ndim)) for flat in range(n**ndim)]
        if symmetric:
            old_key = [tuple(sorted(key, reverse=True)) for key in old_key]
        collection["networks"] = [nets[int(np.ravel_multi_index(key, (nold,) * ndim))] for key in old_key]
    collection["ntypes"] = n
    return collection


def _identity_part(ntypes: int, width: int) -> np.ndarray:
    """What the residual connection of a first layer ntypes -> width adds to its one-hot input (as DeePMD-kit's
    layers: x when width = ntypes, [x, x] when width = 2 ntypes, nothing otherwise), as a matrix."""
    eye = np.eye(ntypes)
    return eye if width == ntypes else np.concatenate([eye, eye], axis=1) if width == 2 * ntypes else 0.0 * eye[:, :0]


def _remap_type_embedding(embedding: dict, index: List[int], nold: int) -> dict:
    """A TypeEmbedNet dict: the one-hot input rows of its first layer selected and reordered. A residual connection
    (width = ntypes or 2 ntypes, before or after) is folded into the weights for a linear layer, as DeePMD-kit does;
    with another activation it cannot be, and is refused."""
    n = len(index)
    if embedding.get("use_econf_tebd"):
        raise ConfigError("a type embedding from electron configurations (use_econf_tebd) cannot be remapped; "
                          "fine-tune with the pretrained type_map")
    first = embedding["embedding"]["layers"][0]
    w = np.asarray(first["@variables"]["w"])
    width = w.shape[1]
    residual_old, residual_new = _identity_part(nold, width), _identity_part(n, width)
    linear = embedding.get("activation_function", "").lower() in ("linear", "none")
    if (residual_old.size or residual_new.size) and not linear:
        raise ConfigError(f"the pretrained type embedding's first layer ({nold} types -> {width}) has a residual "
                          f"connection and activation {embedding.get('activation_function')}, which a changed "
                          "type_map would break (DeePMD-kit refuses it too); fine-tune with the pretrained type_map")
    effective = w + residual_old if residual_old.size else w  # what each one-hot row maps to
    if max(index) >= nold:  # new elements: random rows, as DeePMD-kit
        rows = np.random.default_rng(NEW_TYPE_EMBEDDING_SEED).random((max(index) + 1 - nold, width))
        effective = np.concatenate([effective, rows])
    effective = effective[index]
    first["@variables"]["w"] = effective - residual_new if residual_new.size else effective
    embedding["ntypes"] = n
    if "in_dim" in embedding["embedding"]:
        embedding["embedding"]["in_dim"] = n
    return embedding


def _remap_descriptor(data: dict, index: List[int], nold: int) -> dict:
    kind = data["type"]
    if kind == "hybrid":
        data["list"] = [_remap_descriptor(member, index, nold) for member in data["list"]]
        return data
    if kind not in MIXED_TYPE_DESCRIPTORS + TYPE_BLOCKED_DESCRIPTORS:
        raise ConfigError(f"descriptor {kind}: its type-dependent parameters cannot be moved to another type_map "
                          "(deeppot remaps se_e2_a, se_e2_r, se_e3 by reordering, se_atten and se_atten_v2 by any "
                          "subset or order); fine-tune with the pretrained model's type_map")
    variables = data["@variables"]
    if kind in TYPE_BLOCKED_DESCRIPTORS:
        if sorted(index) != list(range(nold)):
            raise ConfigError(f"descriptor {kind} keeps one neighbor block per element and divides by the total "
                              "neighbor count, so dropping an element would change the model; keep every element "
                              "of the pretrained type_map in model/type_map (data may lack some), in any order")
        sel = list(data["sel"])
        starts = np.concatenate([[0], np.cumsum(sel)])
        slots = np.concatenate([np.arange(starts[t], starts[t + 1]) for t in index]).astype(np.int64)
        data["sel"] = [sel[t] for t in index]
        for name in ("davg", "dstd"):
            variables[name] = variables[name][:, slots]
    for name, fill in (("davg", 0.0), ("dstd", 1.0)):  # new types: placeholders, their data statistics come later
        variables[name] = _take(variables[name], index, nold, fill)
    data["exclude_types"] = _remap_pairs(data.get("exclude_types", []), index)
    if "embeddings" in data:
        data["embeddings"] = _remap_networks(data["embeddings"], index, nold, symmetric=kind == "se_e3")
    if data.get("type_embedding") is not None:
        data["type_embedding"] = _remap_type_embedding(data["type_embedding"], index, nold)
    if "ntypes" in data:
        data["ntypes"] = len(index)
    return data


def _remap_fitting(data: dict, index: List[int], nold: int) -> dict:
    data["ntypes"] = len(index)
    data["nets"] = _remap_networks(data["nets"], index, nold)
    data["exclude_types"] = _remap_atom_types(data.get("exclude_types", []), index)
    for name in PER_TYPE_FITTING_VARIABLES:
        value = data["@variables"].get(name)
        if value is not None and np.shape(value)[0] == nold:
            data["@variables"][name] = _take(value, index, nold, 1.0 if name == "scale" else 0.0)
    return data


def check_standard_model(data: dict, what: str) -> None:
    """Fine-tuning knows descriptor + fitting models; a DP/ZBL model (pair table) is refused by name."""
    if data.get("type", "standard") != "standard":
        raise ConfigError(f"{what} is a {data.get('type')!r} model (DP + pair table); fine-tuning takes plain "
                          "descriptor + fitting models: fine-tune without model/use_srtab, or train from scratch")


def remap_model_types(data: dict, type_map: List[str], where: str = "model/type_map") -> dict:
    """A copy of serialized model dict ``data`` for ``type_map`` (elements of its own, any order; see the module
    docstring for which descriptors allow what). The same dict when the type_map is unchanged."""
    check_standard_model(data, "the pretrained model")
    old = list(data["type_map"])
    index = type_index(old, list(type_map))
    if index == list(range(len(old))):
        return data
    nold = len(old)
    new_elements = [name for name in type_map if name not in old]
    if new_elements and not _takes_new_types(data["descriptor"], data["fitting"]):
        raise ConfigError(f"{where}: elements {new_elements} are not in the pretrained model's type_map {old}; "
                          f"new elements need a type-embedding descriptor (se_atten, se_atten_v2) with one fitting "
                          f"net, and this model's descriptor is {data['descriptor']['type']}. Remove them, or train "
                          "a new model from scratch")
    data = copy.deepcopy(data)
    data["type_map"] = list(type_map)
    data["atom_exclude_types"] = _remap_atom_types(data.get("atom_exclude_types", []), index)
    data["pair_exclude_types"] = _remap_pairs(data.get("pair_exclude_types", []), index)
    if data.get("preset_out_bias"):
        data["preset_out_bias"] = {k: None if v is None else [v[i] if i < nold else None for i in index]
                                   for k, v in data["preset_out_bias"].items()}
    for name, fill in (("out_bias", 0.0), ("out_std", 1.0)):
        data["@variables"][name] = _take(data["@variables"][name], index, nold, fill, axis=1)
    data["descriptor"] = _remap_descriptor(data["descriptor"], index, nold)
    data["fitting"] = _remap_fitting(data["fitting"], index, nold)
    return data


def section_differences(pretrained, current, path: str) -> List[str]:
    """``path/key: pretrained X, input.json Y`` for every hyper-parameter (no arrays, networks, trainable flags)
    where two serialized sections differ."""
    if isinstance(pretrained, dict) and isinstance(current, dict):
        return [line for key in sorted(set(pretrained) | set(current)) if key not in IGNORED_SECTION_KEYS
                for line in section_differences(pretrained.get(key), current.get(key), f"{path}/{key}")]
    if isinstance(pretrained, list) and isinstance(current, list) and len(pretrained) == len(current):
        return [line for i, (a, b) in enumerate(zip(pretrained, current))
                for line in section_differences(a, b, f"{path}/{i}")]
    if isinstance(pretrained, np.ndarray) or isinstance(current, np.ndarray):
        return []
    return [] if pretrained == current else [f"{path}: pretrained {pretrained!r}, input.json {current!r}"]


# ------------------------------------------------------------------ fine-tune
@dataclass
class Pretrained:
    """A pretrained model moved to input.json's type_map, and how to start from it."""

    path: Path
    model_dict: dict  # serialized (spec section 5), for input.json's type_map
    model_params: Dict  # the pretrained model section in input.json's type order (an "auto" sel takes its sel)
    random_fitting: bool  # --model-branch RANDOM: the fitting net starts fresh, the bias is set, not changed
    new_types: List[int]  # input.json's types the pretrained model lacks: descriptor statistics from this data

    def model_section(self, model_config):
        """--use-pretrain-script: input.json's validated model section with the pretrained descriptor (and, without
        RANDOM, fitting_net) in input.json's type order, input.json's trainable flags kept, as DeePMD-kit; each
        key it overwrites is logged."""
        from deeppot.config import ModelConfig

        section = model_config.model_dump(mode="json")
        for part in ["descriptor"] if self.random_fitting else ["descriptor", "fitting_net"]:
            pretrained = copy.deepcopy(self.model_params[part])
            if "trainable" in section[part]:
                pretrained["trainable"] = section[part]["trainable"]
            differences = section_differences(pretrained, section[part], f"model/{part}")
            if differences:
                log.warning("--use-pretrain-script: input.json's model/%s replaced by the pretrained one:\n  %s", part,
                            "\n  ".join(differences))
            section[part] = pretrained
        return ModelConfig.model_validate(section)

    def apply(self, model, stat_batches: List[Dict], protection: float) -> None:
        """Copy the pretrained weights and statistics into ``model`` (built from input.json's section), then refit
        its output bias on ``stat_batches`` (numpy, the model's types); a mismatch is a ConfigError."""
        from deeppot.model import deserialize_model
        from deeppot.model.statistics import compute_parameter_statistics

        current = model.serialize()
        check_standard_model(current, "input.json's model")
        parts = ["descriptor"] if self.random_fitting else ["descriptor", "fitting"]
        differences = [line for part in parts
                       for line in section_differences(self.model_dict[part], current[part], f"model/{part}")]
        if differences:
            only_fitting = all(line.startswith("model/fitting") for line in differences)
            raise ConfigError(
                f"{self.path}: input.json's model section does not match the pretrained model's, whose weights "
                "fine-tuning reuses (per-type values in input.json's type order):\n  " + "\n  ".join(differences)
                + f"\nSet these keys to the pretrained values ('deeppot show {self.path} descriptor fitting-net' "
                "prints them), or take them from the pretrained model with --use-pretrain-script"
                + (", or re-initialise the fitting net with --model-branch RANDOM" if only_fitting else ""))
        pretrained = deserialize_model(self.model_dict)
        state = pretrained.state_dict()
        if self.new_types:  # DeePMD-kit's change_type_map with model_with_new_type_stat: their davg/dstd from data
            from deeppot.model.statistics import compute_descriptor_statistics

            compute_descriptor_statistics(model, stat_batches, protection)
            fresh = model.state_dict()
            for name in [n for n in state if n.endswith(("davg", "dstd"))]:
                state[name][self.new_types] = fresh[name][self.new_types].to(state[name].dtype)
        if self.random_fitting:
            state = {name: value for name, value in state.items() if name.startswith("descriptor.")}
        model.load_state_dict(state, strict=not self.random_fitting)
        if self.random_fitting:
            compute_parameter_statistics(model, stat_batches, protection)
        log.info("fine-tuning from %s: %s weights and descriptor statistics loaded%s", self.path,
                 "descriptor" if self.random_fitting else "all", ", fitting net re-initialised (--model-branch "
                 "RANDOM)" if self.random_fitting else "")
        refit_output_bias(model, stat_batches, "set" if self.random_fitting else "change")


def load_model_file(path: Path):
    """(eager model, metadata with model_def_script) of a training checkpoint or a frozen model file; anything
    else is a ModelFileError saying what it is."""
    from deeppot.export.freeze import load_model_or_checkpoint
    from deeppot.train.checkpoint import archive_kind

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: file not found; give a training checkpoint (model.ckpt-<step>.pt) or a frozen "
                             "model (deeppot freeze)")
    if archive_kind(path) not in ("checkpoint", "frozen"):
        raise ModelFileError(f"{path}: neither a deeppot training checkpoint nor a frozen deeppot model; give "
                             "model.ckpt-<step>.pt or a file written by 'deeppot freeze'")
    return load_model_or_checkpoint(path)


def check_model_branch(branch: Optional[str], option: str = "--model-branch") -> bool:
    """True for RANDOM (re-initialise the fitting); "" and "Default" name a single-task model's only branch."""
    branch = branch or ""
    if branch == RANDOM_BRANCH:
        return True
    if branch not in SINGLE_TASK_BRANCHES:
        raise OptionError(f"{option} {branch!r}: deeppot models are single-task (one branch, 'Default'); give "
                          f"{RANDOM_BRANCH} to re-initialise the fitting net, or leave the option out")
    return False


def load_pretrained(path: str, model_config, model_branch: Optional[str] = None) -> Pretrained:
    """The pretrained model of checkpoint or frozen file ``path`` for input.json's validated model section."""
    random_fitting = check_model_branch(model_branch)
    model, meta = load_model_file(Path(path))
    if model.descriptor.compressed:
        raise ModelFileError(f"{path}: a compressed model (tabulated embedding nets) cannot be fine-tuned; fine-tune "
                             "the uncompressed frozen file or the checkpoint")
    if model.output_type != _output_type(model_config) and not random_fitting:
        raise ConfigError(f"model/fitting_net/type: the pretrained model predicts {model.output_type}, input.json's "
                          f"fitting predicts {_output_type(model_config)}; give --model-branch {RANDOM_BRANCH} to keep "
                          "only the pretrained descriptor")
    model_dict = remap_model_types(model.serialize(), model_config.type_map)
    index = type_index(list(model.type_map), list(model_config.type_map))
    params = _section_for_types(meta["model_def_script"], model_dict, index)
    params["type_map"] = list(model_config.type_map)
    new_types = [t for t, i in enumerate(index) if i >= len(model.type_map)]
    if list(model.type_map) != list(model_config.type_map):
        log.info("fine-tuning: the pretrained type_map %s mapped by element name to input.json's %s%s",
                 list(model.type_map), list(model_config.type_map), "; new elements %s start from random type-"
                 "embedding rows and this data's statistics" % [model_config.type_map[t] for t in new_types]
                 if new_types else "")
    return Pretrained(Path(path), model_dict, params, random_fitting, new_types)


def _output_type(model_config) -> str:
    from deeppot.model import model_class

    return model_class(model_config.fitting_net.type).output_type


def _section_for_types(params: dict, model_dict: dict, index: List[int]) -> dict:
    """The pretrained model section (dumped ModelConfig) in input.json's type order: each descriptor's sel and
    exclude_types as the remapped dict has them, the fitting's sel_type and per-type scale moved."""
    def descriptor(section: dict, data: dict) -> None:
        if section.get("type") == "hybrid":
            for member, member_data in zip(section.get("list", []), data.get("list", [])):
                descriptor(member, member_data)
            return
        if isinstance(section.get("sel"), list) and len(section["sel"]) == len(data.get("sel", [])):
            section["sel"] = list(data["sel"])
        if "exclude_types" in section:
            section["exclude_types"] = [list(pair) for pair in data.get("exclude_types", [])]

    params = copy.deepcopy(params)
    descriptor(params.get("descriptor", {}), model_dict["descriptor"])
    fitting = params.get("fitting_net", {})
    if isinstance(fitting.get("sel_type"), list):
        fitting["sel_type"] = _remap_atom_types(fitting["sel_type"], index)
    if isinstance(fitting.get("scale"), list):
        fitting["scale"] = _take(fitting["scale"], index, len(fitting["scale"]), 1.0).tolist()
    return params
