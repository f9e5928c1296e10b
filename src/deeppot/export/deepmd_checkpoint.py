"""A DeePMD-kit PyTorch checkpoint (``model.ckpt-<step>.pt``) read as plain data, without DeePMD-kit.

What DeePMD-kit 3.2 writes (``deepmd/pt/train/training.py: save_model``; ``deepmd/pt/train/wrapper.py``): a
``torch.save``'d dict ``{"model": state_dict, "optimizer": ...}``. The state dict is its ``ModelWrapper``'s:

- ``_extra_state``: ``{"model_params": <the model section of input.json, normalized>, "train_infos": {lr, step}}``;
- ``model.<branch>.<module path>.<name>`` tensors, ``<branch>`` being ``Default`` for a single-task model.
  Module paths (``deepmd/pt/model``): the atomic model holds ``out_bias``/``out_std``; its ``descriptor`` keeps
  its block under ``sea`` (se_e2_a), ``seat`` (se_e3), ``se_atten`` (se_atten, se_atten_v2; the type embedding
  beside it under ``type_embedding.embedding.embedding_net``), directly (se_e2_r) or ``descrpt_list.<k>``
  (hybrid); statistics are ``mean``/``stddev``; embedding networks ``filter_layers[_strip].networks.<i>``, the
  attention ``dpa1_attention.attention_layers.<k>``; the fitting ``fitting_net`` with ``filter_layers`` and its
  statistics under their serialized names; a layer's weight ``matrix``, ``bias`` and ``idt``.

The serialized dict (spec section 5) is rebuilt by building deeppot's model of ``model_params`` (its dict has
DeePMD-kit's layout) and replacing each of its arrays with the state-dict tensor at the corresponding module path;
every array must be found, with the same shape, and every tensor of the checkpoint used, or the file is refused.
"""

import re
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import numpy as np
import torch
from pydantic import ValidationError

from deeppot.config import ModelConfig
from deeppot.config.messages import format_problems, problems_from_pydantic
from deeppot.errors import ConfigError, ModelFileError

SINGLE_TASK_BRANCH = "Default"
# model_params keys DeePMD-kit adds that do not change a single model's numbers (bookkeeping, multi-task
# aliases, and the DP/ZBL table options when no table is used)
_INERT_KEYS = ("info", "model_branch_alias", "srtab_add_bias")
_BRIDGING_KEYS = ("bridging_method", "bridging_r_inner", "bridging_r_outer")
# tensors a checkpoint may hold that the serialized dict does not: a second view of the networks, empty
# compression tables and cached type-embedding tables (filled only when compressed), the neighbor statistics
_UNSERIALIZED = re.compile(r"\._networks\.|\.compress_info\.|\.compress_data\.|\.type_embd_data$|\.min_nbor_dist$")
# arrays DeePMD-kit's PyTorch polar fitting keeps as plain attributes, outside its state dict: they come from
# model_params (scale) or start at zero (constant_matrix), in deeppot's model built from model_params as in DeePMD-kit's
_NOT_IN_STATE = re.compile(r"\.fitting_net\.(scale|constant_matrix)$")
_DESCRIPTOR_BLOCKS = {"se_e2_a": "sea.", "se_a": "sea.", "se_e3": "seat.", "se_at": "seat.", "se_a_3be": "seat.",
                      "se_t": "seat.", "se_e2_r": "", "se_r": "", "se_atten": "se_atten.", "dpa1": "se_atten.",
                      "se_atten_v2": "se_atten."}
_SEGMENT_NAMES = {"embeddings": "filter_layers", "embeddings_strip": "filter_layers_strip", "nets": "filter_layers",
                  "davg": "mean", "dstd": "stddev", "w": "matrix", "b": "bias"}


def is_deepmd_checkpoint(state: Any) -> bool:
    """Whether a loaded ``torch.save`` object is a DeePMD-kit PyTorch checkpoint."""
    return (isinstance(state, dict) and isinstance(state.get("model"), dict)
            and isinstance(state["model"].get("_extra_state"), dict)
            and "model_params" in state["model"]["_extra_state"])


def read_deepmd_checkpoint(path: Path, state: Dict) -> Dict[str, Any]:
    """``{"model": serialized dict, "model_def_script": model_params, "min_nbor_dist": float}`` of a DeePMD-kit
    checkpoint ``state`` (loaded from ``path``). ModelFileError naming what deeppot lacks otherwise."""
    params = state["model"]["_extra_state"]["model_params"]
    tensors = {key: value for key, value in state["model"].items() if key != "_extra_state"}
    if "model_dict" in params:
        raise ModelFileError(f"{path}: a multi-task DeePMD-kit checkpoint (branches "
                             f"{', '.join(map(repr, params['model_dict']))}); deeppot has no multi-task models. "
                             "Take one branch out with DeePMD-kit first: 'dp --pt freeze -c CHECKPOINT --head "
                             "BRANCH' then 'dp convert-backend frozen_model.pth model.dp'")
    config = deeppot_model_config(params, f"{path} (_extra_state/model_params)",
                                  "this DeePMD-kit model has parts deeppot does not implement")
    from deeppot.model.build import build_model  # the model package imports the export layer's neighbors

    skeleton = build_model(config).serialize()
    prefix = f"model.{SINGLE_TASK_BRANCH}."
    used: Set[str] = set()
    model = _fill(skeleton, [], tensors, prefix + "atomic_model.", used, path)
    unused = sorted(k for k in tensors if k not in used and not _UNSERIALIZED.search(k))
    if unused:
        raise ModelFileError(f"{path}: the checkpoint holds tensors deeppot's {config.descriptor.type} model has no "
                             f"place for ({', '.join(unused[:4])}{', ...' if len(unused) > 4 else ''}); this "
                             "DeePMD-kit model has parts deeppot does not implement")
    min_nbor = tensors.get(prefix + "min_nbor_dist")
    return {"model": model, "model_def_script": params,
            "min_nbor_dist": -1.0 if min_nbor is None else float(min_nbor)}


def deeppot_model_config(params: Dict, where: str, why: str) -> ModelConfig:
    """deeppot's validated model section of DeePMD-kit's ``model_params`` (or of a deeppot model section; inert
    DeePMD-kit keys dropped), found at ``where`` (file and key, named in errors); ModelFileError otherwise, its
    problems (each with its JSON path) under the heading ``why``."""
    section = {k: v for k, v in params.items() if k not in _INERT_KEYS}
    if section.get("bridging_method", "None") == "None":
        section = {k: v for k, v in section.items() if k not in _BRIDGING_KEYS}
    fitting = section.get("fitting_net", {})
    if isinstance(fitting, dict) and "sel_type" in fitting:
        # DeePMD-kit's PyTorch models ignore a tensor fitting's sel_type (its atom_exclude_types selects)
        section["fitting_net"] = {k: v for k, v in fitting.items() if k != "sel_type"}
    if section.get("type", "standard") != "standard" or "use_srtab" in section:
        raise ModelFileError(f"{where}: a DeePMD-kit '{section.get('type', 'DP/ZBL (use_srtab)')}' model; deeppot "
                             "reads only standard descriptor + fitting models")
    try:
        return ModelConfig.model_validate(section)
    except ValidationError as exc:
        problems = format_problems(where, problems_from_pydantic(exc.errors(), section))
        raise ModelFileError(f"{why}:\n{problems}") from None
    except ConfigError as exc:
        raise ModelFileError(f"{where}: {exc}") from None


def _fill(node: Any, where: List, tensors: Dict[str, torch.Tensor], prefix: str, used: Set[str], path: Path) -> Any:
    """A copy of the serialized dict ``node`` (at key path ``where``) with every array taken from ``tensors``."""
    if isinstance(node, dict):
        if where[-1:] == ["descriptor"] or (len(where) >= 2 and where[-2] == "list"):
            prefix = prefix + ("descriptor." if where[-1:] == ["descriptor"] else f"descrpt_list.{where[-1]}.")
            if node.get("type") != "hybrid":
                return {key: _fill(value, where + [key], tensors, _descriptor_prefix(node, key, prefix), used, path)
                        for key, value in node.items()}
        elif where[-1:] == ["fitting"]:
            prefix = prefix + "fitting_net."
        return {key: _fill(value, where + [key], tensors, prefix, used, path) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, where + [index], tensors, prefix, used, path) for index, value in enumerate(node)]
    if not isinstance(node, np.ndarray) or "@variables" not in where:
        return node
    key = prefix + _state_suffix(where)
    if key not in tensors:
        if node.size == 0 or _NOT_IN_STATE.search(key):
            return node
        raise ModelFileError(f"{path}: no tensor '{key}' in the checkpoint, which deeppot's model needs; this "
                             "DeePMD-kit model is laid out as deeppot does not know")
    value = tensors[key].detach().cpu().numpy()
    if value.shape != node.shape:
        raise ModelFileError(f"{path}: tensor '{key}' has shape {tuple(value.shape)}, deeppot's model needs "
                             f"{tuple(node.shape)}")
    used.add(key)
    return value.copy()


def _descriptor_prefix(descriptor: Dict, key: str, prefix: str) -> str:
    """Where a (non-hybrid) descriptor's entry ``key`` sits in DeePMD-kit's module tree."""
    kind = descriptor.get("type", "")
    if kind in ("se_atten", "dpa1", "se_atten_v2") and key == "type_embedding":
        return prefix
    if kind not in _DESCRIPTOR_BLOCKS:
        raise ModelFileError(f"descriptor type {kind!r} has no known layout in DeePMD-kit checkpoints")
    return prefix + _DESCRIPTOR_BLOCKS[kind]


def _state_suffix(where: List) -> str:
    """The module path of an array from its key path below the prefix (descriptor, fitting or model)."""
    parts: List[str] = []
    for index, part in enumerate(_below_component(where)):
        if part == "@variables":
            continue
        if part == "attention_layers" and index == 0:
            parts.append("dpa1_attention")
        elif part == "type_embedding":
            parts.extend(["type_embedding", "embedding", "embedding_net"])
        elif part == "embedding" and parts[-1:] == ["embedding_net"]:
            continue
        else:
            parts.append(_SEGMENT_NAMES.get(part, str(part)))
    return ".".join(parts)


def _below_component(where: List) -> Tuple:
    """The key path below the innermost descriptor / hybrid member / fitting (or the model)."""
    start = 0
    for index, part in enumerate(where):
        if part in ("descriptor", "fitting") or (index > 0 and where[index - 1] == "list"):
            start = index + 1
    return tuple(where[start:])
