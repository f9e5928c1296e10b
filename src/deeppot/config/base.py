"""Shared building blocks: the section base class, type registries, common field types.

Input is processed in two stages. :func:`clean_section` walks the raw JSON
alongside the section classes: it drops ``_comment*`` keys, renames aliases to
canonical names, resolves ``type`` keys through a :class:`TypeRegistry` and
reports unknown keys with a did-you-mean suggestion. The cleaned dict is then
validated by pydantic (strict types, ranges, cross-field checks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from deeppot.config.messages import Path, Problem, did_you_mean, quoted_list, show

COMMENT_PREFIX = "_comment"


class Section(BaseModel):
    """Base class of every input.json section.

    ``ALIASES`` maps accepted alternative key names to canonical field names.
    ``VARIANTS`` maps a field name to the registry that picks the class of that
    sub-section from its ``type`` key.
    """

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)

    ALIASES: ClassVar[dict[str, str]] = {}
    VARIANTS: ClassVar[dict[str, TypeRegistry]] = {}

    @classmethod
    def child(cls, name: str) -> type[Section] | TypeRegistry | None:
        """How to clean the value of field ``name``: a section class, a registry, or nothing."""
        if name in cls.VARIANTS:
            return cls.VARIANTS[name]
        annotation = cls.model_fields[name].annotation
        for candidate in (annotation, *get_args(annotation)):
            if isinstance(candidate, type) and issubclass(candidate, Section):
                return candidate
        return None


@dataclass(frozen=True)
class TypeRegistry:
    """Maps the ``type`` key of a section to the class that validates it (in :mod:`deeppot.config`) or, with
    the same names and aliases, to the class that implements it (e.g. :data:`deeppot.descriptor.DESCRIPTORS`).

    ``what`` names the section in messages (e.g. "descriptor"); ``default`` is the
    type used when the key is absent (``None``: the key is required);
    ``unsupported`` lists DeePMD-kit types that deeppot knows but does not implement; ``refused`` maps a type
    that is not allowed here to the reason why.
    """

    what: str
    classes: dict[str, type]
    aliases: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    unsupported: tuple[str, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)

    def supported(self) -> str:
        """Human-readable list of accepted types with their aliases."""
        names = []
        for name in self.classes:
            alias = [a for a, canonical in self.aliases.items() if canonical == name]
            names.append(f"'{name}'" + (f" (alias {quoted_list(alias)})" if alias else ""))
        if len(names) == 1:
            return f"only {names[0]} is supported"
        return "supported: " + ", ".join(names)

    def resolve(self, name: Any) -> tuple[str, type]:
        """Canonical type name and class for ``name``; ``ValueError`` with a hint otherwise."""
        if not isinstance(name, str):
            raise ValueError(f"expected a string, got {show(name)}; {self.supported()}")
        canonical = self.aliases.get(name, name)
        if canonical in self.refused:
            raise ValueError(self.refused[canonical])
        if canonical in self.classes:
            return canonical, self.classes[canonical]
        if name in self.unsupported:
            raise ValueError(f"{self.what} type '{name}' is not supported by deeppot; {self.supported()}")
        hint = did_you_mean(name, self.classes, self.aliases)
        hint = f"{hint} " if hint else ""
        raise ValueError(f"unknown {self.what} type '{name}'; {hint}{self.supported()}")


def clean_section(
    data: Any, cls: type[Section], path: Path, problems: list[Problem], skipped: set[Path]
) -> Any:
    """Return ``data`` with comments removed, aliases renamed and unknown keys dropped.

    Problems found here are appended to ``problems``. Paths whose value could not
    be interpreted (e.g. an unknown ``type``) are added to ``skipped`` so that the
    later pydantic stage does not report them a second time.
    """
    if not isinstance(data, dict):
        return data
    cleaned: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and key.startswith(COMMENT_PREFIX):
            continue
        canonical = cls.ALIASES.get(key, key)
        if canonical not in cls.model_fields:
            hint = did_you_mean(key, cls.model_fields, cls.ALIASES)
            problems.append(Problem(path + (key,), "unknown key; " + (hint or "remove it")))
            continue
        if canonical in cleaned:
            problems.append(
                Problem(path + (key,), f"'{canonical}' is given twice (once via an alias); keep one")
            )
            continue
        cleaned[canonical] = _clean_child(cls.child(canonical), value, path + (canonical,), problems, skipped)
    return cleaned


def _clean_child(
    child: type[Section] | TypeRegistry | None,
    value: Any,
    path: Path,
    problems: list[Problem],
    skipped: set[Path],
) -> Any:
    if isinstance(child, TypeRegistry):
        if isinstance(value, list):  # a list of typed sections (a hybrid descriptor's "list")
            return [_clean_child(child, item, path + (i,), problems, skipped) for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return value  # reported by pydantic as a type error
        if "type" not in value and child.default is None:
            problems.append(Problem(path + ("type",), f"required key missing; {child.supported()}"))
            skipped.add(path)
            return value
        try:
            canonical, cls = child.resolve(value.get("type", child.default))
        except ValueError as exc:
            problems.append(Problem(path + ("type",), str(exc)))
            skipped.add(path)
            return value
        cleaned = clean_section(value, cls, path, problems, skipped)
        cleaned["type"] = canonical
        return cleaned
    if child is not None:
        return clean_section(value, child, path, problems, skipped)
    return strip_comments(value)


def strip_comments(value: Any) -> Any:
    """``value`` with every ``_comment*`` key removed from the dicts in it, at any depth."""
    if isinstance(value, dict):
        return {
            k: strip_comments(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith(COMMENT_PREFIX))
        }
    if isinstance(value, list):
        return [strip_comments(v) for v in value]
    return value


# ---- common field types -------------------------------------------------------------

ACTIVATIONS = ("tanh", "relu", "relu6", "softplus", "sigmoid", "gelu", "gelu_tf", "silu", "none", "linear")
_SILUT = re.compile(r"silut(:\d+(\.\d*)?([eE][-+]?\d+)?)?")


def _check_activation(name: str) -> str:
    lowered = name.lower()
    if lowered in ACTIVATIONS or _SILUT.fullmatch(lowered):
        return lowered
    raise ValueError(
        f"'{name}' is not a supported activation function; use one of {quoted_list(ACTIVATIONS)}"
        " or 'silut[:threshold]'"
    )


Activation = Annotated[str, AfterValidator(_check_activation)]
"""Activation function name (case-insensitive, stored lower-case)."""

PRECISIONS = ("default", "float64", "float32", "float16", "bfloat16")


def _check_precision(name: str) -> str:
    if name in PRECISIONS:
        return name
    raise ValueError(f"'{name}' is not a supported precision; use one of {quoted_list(PRECISIONS)}")


Precision = Annotated[str, AfterValidator(_check_precision)]
"""Floating-point precision of a network; "default" means float64."""


def resolve_precision(precision: str) -> str:
    """The concrete dtype name: "default" becomes "float64"."""
    return "float64" if precision == "default" else precision


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_layer_sizes(value: Any) -> Any:
    if not isinstance(value, list) or not all(_is_int(v) and v > 0 for v in value):
        raise ValueError(f"expected a list of positive integers (layer widths), got {show(value)}")
    return value


LayerSizes = Annotated[list[int], BeforeValidator(_check_layer_sizes)]
"""Hidden-layer widths of a network, e.g. [25, 50, 100]."""


def _check_type_pairs(value: Any) -> Any:
    ok = isinstance(value, list) and all(
        isinstance(pair, list) and len(pair) == 2 and all(_is_int(t) and t >= 0 for t in pair) for pair in value
    )
    if not ok:
        raise ValueError(f"expected a list of [type_i, type_j] pairs of type indices, got {show(value)}")
    return value


TypePairs = Annotated[list[list[int]], BeforeValidator(_check_type_pairs)]
"""Pairs of atom-type indices (0-based, into model/type_map)."""


def type_index_problems(
    indices: list[int] | list[list[int]], ntypes: int, path: Path
) -> list[tuple[Path, str]]:
    """Problems for type indices (flat or in pairs) that are not below ``ntypes``."""
    found: list[tuple[Path, str]] = []
    for i, entry in enumerate(indices):
        for t in entry if isinstance(entry, list) else [entry]:
            if t >= ntypes:
                found.append(
                    (
                        path + (i,),
                        f"type index {t} is out of range; model/type_map has {ntypes} types, "
                        f"so use indices 0 to {ntypes - 1}",
                    )
                )
    return found
