"""``deeppot doc-train-input [--out-type markdown|json] [-o FILE]``: every input.json key, from the config models."""

import argparse
import logging
from pathlib import Path

log = logging.getLogger("deeppot")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "doc-train-input",
        help="print every input.json key with its type, default, aliases and meaning",
        description="Print the keys 'deeppot train' accepts in input.json, generated from the same config models "
        "that validate it, so the list cannot drift from what train accepts.",
    )
    parser.add_argument("--out-type", choices=("markdown", "json"), default="markdown",
                        help="markdown tables, one per section, or a JSON list of keys (default markdown)")
    parser.add_argument("-o", "--output", default=None, help="write to this file instead of the standard output")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    from deeppot.report.input_doc import to_json, to_markdown
    from deeppot.train.checkpoint import atomic_write

    text = to_json() if args.out_type == "json" else to_markdown()
    if args.output is None:
        print(text, end="")
        return
    atomic_write(Path(args.output), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    log.info("input.json keys written to %s", args.output)
