"""Every input.json key ``deeppot train`` accepts, with its type, default, aliases and meaning, generated from the
pydantic config models (:mod:`deeppot.config`): the field annotations give the types, the field defaults the
defaults, each section's ``ALIASES`` the aliases and the docstring under each field the meaning. Typed sections
(descriptor, fitting_net, loss, ...) are walked through their registries, one variant per ``type``.

``input_keys()`` lists them; ``to_json()`` and ``to_markdown()`` render the list (``deeppot doc-train-input``).
"""

import json
import types
import typing
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Type

import annotated_types
from pydantic_core import PydanticUndefined

from deeppot.config.base import Section, TypeRegistry
from deeppot.config.loader import InputConfig


@dataclass
class KeyDoc:
    """One key: ``path`` (slash-separated from the top; a typed section's variant as ``descriptor[se_e2_a]``,
    list items as ``list[]``), ``type``, ``default`` (JSON value; None when ``required``), ``aliases`` and
    ``doc``. A typed-section variant has an entry of its own with ``type`` "section" and the registry's ``type``
    aliases."""

    path: str
    type: str
    required: bool
    default: Any = None
    aliases: List[str] = field(default_factory=list)
    doc: str = ""


_CONSTRAINTS = ((annotated_types.Gt, ">"), (annotated_types.Ge, ">="), (annotated_types.Lt, "<"),
                (annotated_types.Le, "<="))


def type_text(annotation: Any, metadata: Tuple = ()) -> str:
    """A readable type: ``int (> 0)``, ``list[int] | str``, ``"auto" | int``, ``section``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0], tuple(args[1:]) + tuple(metadata))
    if origin in (typing.Union, types.UnionType):
        text = " | ".join(dict.fromkeys(type_text(a) for a in args))  # a union of sections reads "section"
    elif origin is typing.Literal:
        text = " | ".join(json.dumps(a) for a in args)
    elif origin in (list, tuple):
        text = f"list[{' | '.join(type_text(a) for a in args)}]" if args else "list"
    elif origin is dict:
        text = f"dict[{type_text(args[0])}, {type_text(args[1])}]" if args else "dict"
    elif annotation is type(None):
        text = "null"
    elif isinstance(annotation, type) and issubclass(annotation, Section):
        text = "section"
    else:
        text = getattr(annotation, "__name__", str(annotation))
    bounds = [f"{symbol} {getattr(m, next(iter(m.__dataclass_fields__)))}"
              for m in metadata for kind, symbol in _CONSTRAINTS if isinstance(m, kind)]
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _is_list(annotation: Any) -> bool:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return typing.get_origin(annotation) is list


def _default(info) -> Tuple[bool, Any]:
    """(required, default as JSON data) of a pydantic field."""
    if info.default_factory is not None:
        value = info.default_factory()
    elif info.default is PydanticUndefined:
        return True, None
    else:
        value = info.default
    return False, value.model_dump(mode="json") if isinstance(value, Section) else value


def input_keys() -> List[KeyDoc]:
    """Every key of input.json, depth first in the order of the config models."""
    found: List[KeyDoc] = []
    _walk(InputConfig, "", found, {})
    return found


def _walk(cls: Type[Section], prefix: str, found: List[KeyDoc], seen: Dict[type, str]) -> None:
    seen[cls] = prefix
    for name, info in cls.model_fields.items():
        path = prefix + name
        required, default = _default(info)
        aliases = sorted(alias for alias, canonical in cls.ALIASES.items() if canonical == name)
        child = cls.child(name)
        found.append(KeyDoc(path, type_text(info.annotation, tuple(info.metadata)), required, default, aliases,
                            info.description or ""))
        if isinstance(child, TypeRegistry):
            _walk_variants(child, path + ("[]" if _is_list(info.annotation) else ""), found, seen)
        elif child is not None and child not in seen:
            _walk(child, path + "/", found, seen)


def _walk_variants(registry: TypeRegistry, path: str, found: List[KeyDoc], seen: Dict[type, str]) -> None:
    """One entry per ``type`` the registry accepts, then its keys, or where they are listed: a class met again
    (a hybrid's members) is listed under its first registry only."""
    listed_before = {cls for cls in registry.classes.values() if cls in seen}
    for type_name, cls in registry.classes.items():
        seen.setdefault(cls, f"{path}[{type_name}]/")
    for type_name, cls in registry.classes.items():
        aliases = sorted(alias for alias, canonical in registry.aliases.items() if canonical == type_name)
        variant = f"{path}[{type_name}]"
        doc = (cls.__doc__ or "").strip()
        if cls in listed_before:
            found.append(KeyDoc(variant, "section", False, None, aliases, f"{doc} Keys as {seen[cls].rstrip('/')}."))
            continue
        default_note = " (the default type)" if registry.default == type_name else ""
        found.append(KeyDoc(variant, "section", False, None, aliases, doc + default_note))
        _walk(cls, variant + "/", found, seen)


def to_json(keys: Optional[List[KeyDoc]] = None) -> str:
    """The key list as a JSON document ``{"keys": [{path, type, required, default, aliases, doc}, ...]}``."""
    return json.dumps({"keys": [asdict(k) for k in (keys or input_keys())]}, indent=2) + "\n"


def to_markdown(keys: Optional[List[KeyDoc]] = None) -> str:
    """The key list as Markdown: one table per section (key, type, default, aliases, meaning)."""
    keys = keys or input_keys()
    lines = ["# input.json keys accepted by deeppot train", "",
             "Generated from deeppot's config models (`deeppot doc-train-input`). A path `a/b[x]/c` is key `c` of "
             "section `a/b` when its `type` is `x`; `list[]` is each item of a list.", ""]
    sections: Dict[str, List[KeyDoc]] = {}
    for key in keys:
        parent, _, _ = key.path.rpartition("/")
        sections.setdefault(parent, []).append(key)
    for parent, members in sections.items():
        lines += [f"## {parent or '(top level)'}", "", "| key | type | default | aliases | meaning |",
                  "|---|---|---|---|---|"]
        for key in members:
            name = key.path.rpartition("/")[2]
            default = "required" if key.required else ("its keys' defaults" if isinstance(key.default, dict)
                                                      else f"`{json.dumps(key.default)}`")
            if key.type == "section" and key.default is None and not key.required:
                default = "" if "[" in name else "`null`"
            lines.append("| " + " | ".join(_cell(c) for c in (
                f"`{name}`", key.type, default, ", ".join(f"`{a}`" for a in key.aliases), key.doc)) + " |")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
