"""Turn validation failures into one-line, user-facing messages.

Every problem is reported as ``<source>: <json/path>: <what is wrong>; <what to change>``.
Pydantic's own error records are translated here so that users never see a raw
pydantic dump, and so that paths use the canonical JSON key names joined by ``/``
(list indices appear as plain numbers).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

PathPart = str | int
Path = tuple[PathPart, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (JSON path) and what."""

    path: Path
    message: str

    def render(self, source: str) -> str:
        """Format as ``<source>: <path>: <message>``."""
        return f"{source}: {join_path(self.path)}: {self.message}"


class SectionProblems(ValueError):
    """Raised by cross-field validators to report problems on specific sub-paths.

    ``items`` holds ``(relative_path, message)`` pairs; the path is relative to the
    section whose validator raised.
    """

    def __init__(self, items: Sequence[tuple[Path, str]]) -> None:
        super().__init__("; ".join(message for _, message in items))
        self.items = list(items)


def join_path(path: Path) -> str:
    """Join path parts with ``/``; the empty path is shown as ``(top level)``."""
    return "/".join(str(part) for part in path) if path else "(top level)"


def show(value: Any) -> str:
    """Render a user value for a message: strings in single quotes, the rest as JSON."""
    if isinstance(value, str):
        text = f"'{value}'"
    else:
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def quoted_list(names: Iterable[str]) -> str:
    """``'a', 'b', 'c'``."""
    return ", ".join(f"'{name}'" for name in names)


def did_you_mean(word: str, candidates: Iterable[str], aliases: dict[str, str] | None = None) -> str:
    """Return ``"did you mean 'x'?"`` for the closest candidate, or ``""`` if none is close.

    ``aliases`` maps alternative names to canonical ones; a match on an alias
    suggests the canonical name.
    """
    aliases = aliases or {}
    pool = sorted(set(candidates) | set(aliases))
    matches = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not matches:
        return ""
    return f"did you mean '{aliases.get(matches[0], matches[0])}'?"


def format_problems(source: str, problems: Sequence[Problem]) -> str:
    """All problems, one per line."""
    return "\n".join(problem.render(source) for problem in problems)


_TYPE_WORDS = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object ({...})",
    "model_type": "an object ({...})",
    "model_attributes_type": "an object ({...})",
    "none_required": "null",
}


def _describe(error: dict[str, Any]) -> str:
    """The message part for one pydantic error record."""
    kind = error["type"]
    ctx = error.get("ctx", {})
    given = error.get("input")
    if kind == "missing":
        return "required key missing; add it"
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {show(given)}"
    if kind == "literal_error":
        return f"{show(given)} is not allowed; use one of {ctx['expected']}"
    if kind == "greater_than":
        return f"must be greater than {ctx['gt']}, got {show(given)}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}, got {show(given)}"
    if kind == "less_than":
        return f"must be smaller than {ctx['lt']}, got {show(given)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}, got {show(given)}"
    if kind == "too_short":
        return f"needs at least {ctx['min_length']} entries, got {show(given)}"
    if kind == "value_error":
        return str(ctx["error"])
    return str(error["msg"])


def display_path(loc: Sequence[PathPart], data: Any, missing: bool = False) -> Path:
    """Map a pydantic ``loc`` onto the JSON path of the (cleaned) input ``data``.

    Parts that do not exist in the data (the tags pydantic adds for union members
    and discriminated unions) are dropped; with ``missing`` the final part names
    an absent key and is kept.
    """
    parts: list[PathPart] = []
    node = data
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            parts.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parts.append(part)
            node = node[part]
        elif missing and index == len(loc) - 1:
            parts.append(part)
    return tuple(parts)


def problems_from_pydantic(errors: Iterable[dict[str, Any]], data: Any) -> list[Problem]:
    """Translate pydantic error records into problems with JSON paths."""
    problems: list[Problem] = []
    for error in errors:
        path = display_path(error["loc"], data, missing=error["type"] == "missing")
        cause = error.get("ctx", {}).get("error")
        if error["type"] == "value_error" and isinstance(cause, SectionProblems):
            problems.extend(Problem(path + rel, message) for rel, message in cause.items)
        else:
            problems.append(Problem(path, _describe(error)))
    return problems
