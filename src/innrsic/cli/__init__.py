"""The `innrsic` command line: parse, call the library, print. No logic of its own.

Each subcommand lives in a module of this package that defines ``register(subparsers)``;
the modules are listed in COMMAND_MODULES in the order `--help` shows them. Every parser is an
`innrsic.cli.options.Parser` (repeated options, defaults in `--help`). `-v` works before or
after the command; a closed stdout (``innrsic info --json | head -2``) ends the command quietly.
Python warnings (libraries') are logged as one debug line each (`-v` shows them), never
printed raw.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from innrsic import __version__
from innrsic.cli.options import HelpFormatter, Parser
from innrsic.errors import InnrsicError
from innrsic.interrupt import exit_status, signal_name, signals_as_interrupt

COMMAND_MODULES = (
    "innrsic.cli.coding",
    "innrsic.cli.enhance",
    "innrsic.cli.demo",
    "innrsic.cli.pairs",
    "innrsic.cli.train",
    "innrsic.cli.evaluate",
    "innrsic.cli.weights",
    "innrsic.cli.models",
    "innrsic.cli.view",
)

EPILOG = """examples:
  innrsic compress scene.png -o scene.rsic --codec jpeg2000:bpp=0.2
  innrsic compress images/ -o bitstreams/ --codec heif:quality=30
  innrsic decompress scene.rsic -o scene.png
  innrsic info scene.rsic --json
  innrsic enhance decoded.png -o enhanced.png --weights enhancer.safetensors --seed 1
  innrsic decompress scene.rsic -o scene.png --enhance enhancer.safetensors
  innrsic demo --data ../shared/data --out demo-output
run `innrsic COMMAND --help` for each command's options and examples."""

SIGPIPE_STATUS = 128 + 13  # as if killed by SIGPIPE, the shell's convention


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = Parser(
        prog="innrsic",
        description="Perceptual remote-sensing image compression (codecs + invertible enhancer).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"innrsic {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    _add_verbose(subparsers)
    return parser


def _add_verbose(subparsers: argparse._SubParsersAction) -> None:
    """-v on every (nested) subcommand too; SUPPRESS keeps a -v given before the command."""
    for subparser in subparsers.choices.values():
        subparser.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
            help="log debug messages",
        )
        for action in subparser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_verbose(action)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns the process exit code (0 ok, 1 some inputs failed, 2 usage/error,
    128 + N when stopped by signal N: 130 Ctrl-C, 143 SIGTERM, see `innrsic.interrupt`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s"
    )
    logging.getLogger("PIL").setLevel(logging.WARNING)  # its debug lines drown -v's
    try:
        with signals_as_interrupt(), warnings.catch_warnings():
            warnings.showwarning = _log_warning
            status = int(args.handler(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return status
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_STATUS
    except InnrsicError as exc:
        print(f"innrsic {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"innrsic {args.command}: interrupted ({signal_name(exc)})", file=sys.stderr)
        return exit_status(exc)


def _log_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """`warnings.showwarning` for the command: one debug line, not the raw warning."""
    text = " ".join(str(message).split())
    logging.getLogger("innrsic.warnings").debug("%s: %s", category.__name__, text)


if __name__ == "__main__":
    sys.exit(main())
