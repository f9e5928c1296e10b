"""Command line: ``deeppot <command> ...`` with DeePMD-kit's command words. No logic here."""

import argparse
import logging
import sys
from typing import List, Optional

from deeppot import __version__
from deeppot.errors import DeeppotError
from deeppot.runtime import configure_threads


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks on errors")
    parser.add_argument("-l", "--log-path", default=None, help="also write the log to this file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deeppot",
        description="Train, freeze, test and run Deep Potential models (DeePMD-kit compatible) on PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"deeppot v{__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from deeppot.commands import (change_bias, compress, convert, convert_backend, doc_train_input, freeze, model_devi,
                                  neighbor_stat, plot, show, test, train)

    for module in (train, freeze, test, compress, convert, convert_backend, neighbor_stat, model_devi, plot, show,
                   doc_train_input, change_bias):
        command = module.add_parser(sub)
        _add_common(command)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    try:  # before the commands import torch, so OpenMP's wait policy takes effect
        configure_threads()
    except DeeppotError as exc:
        print(f"deeppot: error: {exc}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    handlers = [logging.StreamHandler(sys.stderr)]
    if args.log_path:
        handlers.append(logging.FileHandler(args.log_path))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="[deeppot %(asctime)s] %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        handlers=handlers,
    )
    try:
        args.func(args)
    except DeeppotError as exc:
        if args.verbose:
            raise
        print(f"deeppot {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deeppot {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure: still one message; -v shows the traceback
        if args.verbose:
            raise
        print(f"deeppot {args.command}: error: {exc.__class__.__name__}: {exc} (run with -v for the traceback)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
