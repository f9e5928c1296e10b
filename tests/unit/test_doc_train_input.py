"""deeppot doc-train-input: every key 'train' accepts is listed (aliases, types, defaults, meanings), and every
listed key is one 'train' accepts."""

import json
import re

from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.config.base import Section
from deeppot.errors import ConfigError
from deeppot.report.input_doc import input_keys
from helpers import ROOT, small_water_input

VARIANT = re.compile(r"^(?P<name>[^\[]*)((?P<list>\[\])?\[(?P<type>[^\]]+)\])?$")


def _all_sections(cls=Section):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_sections(sub)


def _place(raw: dict, path: str, value) -> str:
    """Put ``value`` at a documented ``path`` of ``raw`` (variants selected by their type); returns the JSON path
    a message would name."""
    node, shown = raw, []
    parts = path.split("/")
    for position, part in enumerate(parts):
        match = VARIANT.match(part)
        name, variant = match["name"], match["type"]
        last = position == len(parts) - 1
        if variant is None:
            if last:
                node[name] = value
            else:
                node = node[name] if isinstance(node.get(name), dict) else node.setdefault(name, {})
            shown.append(name)
            continue
        section = {"type": variant}
        if match["list"]:
            node[name] = [section]
            shown += [name, "0"]
        else:
            node[name] = section
            shown.append(name)
        node = section
    return "/".join(shown)


def test_every_listed_key_is_accepted_by_train():
    keys = input_keys()
    assert len(keys) > 250
    for key in keys:
        if key.path.endswith("]"):  # a variant entry: its type is accepted
            continue
        value = key.default if not key.required and key.default is not None else 1
        parent = key.path.rpartition("/")[0]
        for name in [key.path.rpartition("/")[2]] + key.aliases:  # the key, then each alias in its place
            data = small_water_input()
            shown = _place(data, f"{parent}/{name}" if parent else name, value)
            try:
                validate_input(data)
            except ConfigError as exc:
                assert f"{shown}: unknown key" not in str(exc), key.path


def test_every_key_train_accepts_is_listed():
    listed = {}
    for key in input_keys():
        listed.setdefault(key.path.rpartition("/")[2], []).append(key)
    for cls in _all_sections():
        for name, info in cls.model_fields.items():
            assert name in listed, f"{cls.__name__}.{name} missing"
            if info.description and not cls.__subclasses__():  # a base's field may be redefined below
                assert any(k.doc == info.description for k in listed[name]), f"{cls.__name__}.{name}: doc"
        for alias, canonical in cls.ALIASES.items():
            assert any(alias in k.aliases for k in listed[canonical]), f"{cls.__name__}: alias {alias}"
    # every key of the shipped examples is listed under its section
    paths = {re.sub(r"\[[^\]]*\]", "", k.path.rpartition("/")[0] + "/" + name).lstrip("/")
             for k in input_keys() for name in [k.path.rpartition("/")[2]] + k.aliases}
    for example in sorted(ROOT.glob("examples/**/input.json")):
        for key_path in _key_paths(json.loads(example.read_text())):
            # a hybrid member's keys may be listed once, under the top-level variant of its type
            assert key_path in paths or key_path.replace("/list/", "/") in paths, f"{example}: {key_path}"


def _key_paths(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("_comment"):
                continue
            yield prefix + key
            yield from _key_paths(value, prefix + key + "/")
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict):
                yield from _key_paths(item, prefix.rstrip("/") + "/")


def test_documented_details(capsys):
    keys = {k.path: k for k in input_keys()}
    steps = keys["training/numb_steps"]
    assert steps.required and steps.type == "int (>= 0)"
    assert set(steps.aliases) == {"stop_batch", "num_steps", "num_step", "numb_step"}
    numb_btch = keys["training/validation_data/numb_btch"]
    assert numb_btch.type == 'int | "all"' and numb_btch.default == 1 and numb_btch.aliases == ["numb_batch"]
    assert "deeppot test" in numb_btch.doc
    assert keys["model/descriptor[se_e2_a]"].aliases == ["se_a"]
    assert keys["model/descriptor[se_e2_a]/rcut"].default == 6.0
    assert "Keys as model/descriptor[se_atten]" in keys["model/descriptor[hybrid]/list[][se_atten]"].doc
    assert keys["training/tensorboard_log_dir"].default == "log"


def test_command_outputs(tmp_path, capsys):
    assert main(["doc-train-input", "--out-type", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)["keys"]
    assert [k["path"] for k in listed] == [k.path for k in input_keys()]
    assert main(["doc-train-input", "-o", str(tmp_path / "keys.md")]) == 0
    markdown = (tmp_path / "keys.md").read_text()
    assert "## training/validation_data" in markdown
    assert "| `numb_steps` | int (>= 0) | required | `num_step`, `num_steps`, `numb_step`, `stop_batch` |" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| `")]
    assert len(rows) == len(listed)
