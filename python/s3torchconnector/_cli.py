"""The ``s3torchconnector`` command: one entry point for the package's commands.

    s3torchconnector manifest s3://bucket/train/ s3://bucket/manifests/train.jsonl.gz
    s3torchconnector pack s3://bucket/raw/ s3://bucket/shards/ --shard-size 256MiB

``python -m s3torchconnector ...`` runs the same. Each subcommand is the ``main(argv, prog)`` of its
module (``manifest.main``, ``shards.main``), given the words after the subcommand's name, so its options,
help and exit status are that module's; ``prog`` makes its usage and messages name it as it was typed
(``s3torchconnector manifest``, not ``python -m s3torchconnector.manifest``).
"""

import argparse
import sys
from typing import Callable, Dict, List, NamedTuple, Optional


class _Command(NamedTuple):
    help: str
    run: Callable[[List[str]], int]


def _manifest(argv: List[str]) -> int:
    from .manifest import main

    return main(argv, prog="s3torchconnector manifest")


def _pack(argv: List[str]) -> int:
    from .shards import main

    return main(["pack", *argv], prog="s3torchconnector")


COMMANDS: Dict[str, _Command] = {
    "manifest": _Command("list an S3 prefix once and write its manifest (JSON Lines, .gz for gzip)", _manifest),
    "pack": _Command("pack a prefix of small objects into tar shards in WebDataset's layout", _pack),
}


def _parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="s3torchconnector", description="Manifests and tar shards of S3 data for PyTorch training."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        required=True,
        help="one of these; 's3torchconnector COMMAND --help' tells more",
    )
    for name, command in COMMANDS.items():
        commands.add_parser(name, help=command.help, add_help=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Runs ``s3torchconnector COMMAND ...`` with ``argv`` (``sys.argv[1:]`` when None) and returns
    the exit status. ``manifest`` and ``pack`` go to their modules' ``main``; anything else (no
    command, ``--help``, ``--version``, an unknown command) is answered by argparse, which exits."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]].run(argv[1:])
    _parser().parse_args(argv)  # prints help or the error, and exits
    return 2  # not reached: every argv that names no command makes argparse exit
