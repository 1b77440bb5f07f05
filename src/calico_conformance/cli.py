"""The `calico-conformance` command line: a registry of subcommands, one module each under `commands/`.

Every subcommand module defines `COMMAND`, a `Command`. Bad input is reported as `file:line: why` on
stderr with exit status 2 (a `UsageFailure`), never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

# Module names under calico_conformance.commands, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = ("simulate", "diff", "selector", "lint", "images")


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, one-line help, how it declares its arguments and what it runs."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class UsageFailure(Exception):
    """Bad input the user can fix; the message is printed as is (usually `file:line: why`)."""


def _load_commands() -> list[Command]:
    commands = []
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"calico_conformance.commands.{module_name}")
        except ModuleNotFoundError as missing:
            if missing.name == f"calico_conformance.commands.{module_name}":
                continue  # a command that is not built yet is simply not offered
            raise
        commands.append(module.COMMAND)
    return commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calico-conformance",
        description="Calico policy oracle, linter and helpers of the calico-conformance test suite.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _load_commands():
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args._run(args)
    except (UsageFailure, ValueError, OSError) as failure:
        print(f"calico-conformance {args.command}: {failure}", file=sys.stderr)
        return EXIT_USAGE
    return result


if __name__ == "__main__":
    sys.exit(main())
