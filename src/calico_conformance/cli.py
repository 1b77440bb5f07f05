"""The `calico-conformance` command line: a registry of subcommands, one module each under `commands/`.

Every subcommand module defines `COMMAND`, a `Command`. Bad input is reported as `file:line: why` on
stderr with exit status 2 (a `UsageFailure`), never as a traceback.

Exit statuses, for every subcommand: 0 done; 1 findings (`lint`); 2 bad input or usage; 74 (sysexits'
EX_IOERR) standard output is closed or cannot be written, so nothing was delivered; 141 (128 + SIGPIPE,
what a shell reports for a command killed by a closed pipe) the reader of standard output went away
(`| head -0`); 130 interrupted. Output problems are handled here, once, rather than in each command:
a command that "succeeded" without its output reaching anyone must never exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_OUTPUT_FAILED = 74
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
EXIT_STATUSES = frozenset(
    {EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_OUTPUT_FAILED, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE}
)

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
    try:
        return _main(argv)
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        _tell("calico-conformance: interrupted")
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    help_output = _GuardedOutput(sys.stdout) if sys.stdout is not None else None
    try:
        with contextlib.redirect_stdout(help_output):
            args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or argparse's own usage error (status 2, already printed)
        # argparse swallows an OSError from writing the help; the guard saw it all the same
        failure = help_output.failure if help_output is not None else None
        if isinstance(failure, BrokenPipeError):
            raise failure from None
        if failure is not None or not _flush_stdout("calico-conformance"):
            return EXIT_OUTPUT_FAILED
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    name = f"calico-conformance {args.command}"
    if sys.stdout is None:  # started with standard output closed (`>&-`): Python leaves it None
        _tell(f"{name}: standard output is closed; nothing can be printed")
        return EXIT_OUTPUT_FAILED
    real_stdout = sys.stdout
    sys.stdout = _GuardedOutput(real_stdout)
    try:
        result: int = args._run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        raise  # the reader left: `main` ends quietly with EXIT_BROKEN_PIPE
    except OutputFailure as failure:
        _tell(f"{name}: cannot write standard output: {failure.strerror or failure}")
        _discard_stdout()
        return EXIT_OUTPUT_FAILED
    except (UsageFailure, ValueError, OSError) as failure:  # OSError: an input that cannot be read
        _tell(f"{name}: {failure}")
        return EXIT_USAGE
    except RecursionError:
        _tell(f"{name}: the input is nested too deeply to read")
        return EXIT_USAGE
    finally:
        sys.stdout = real_stdout
    return result


class OutputFailure(OSError):
    """Standard output could not take what a command wrote (closed descriptor, full disk, I/O error)."""


class _GuardedOutput:
    """Standard output as the commands see it: a failed write or flush becomes an `OutputFailure`, so
    that it is told apart from an input that cannot be read (also an OSError). A broken pipe stays a
    BrokenPipeError: the reader left, which `main` ends quietly."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.failure: OSError | None = None  # the first failure, kept for callers that swallow it

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as failure:
            raise self._failed(failure) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as failure:
            raise self._failed(failure) from None

    def _failed(self, failure: OSError) -> OSError:
        if not isinstance(failure, BrokenPipeError):
            failure = OutputFailure(failure.errno, failure.strerror)
        self.failure = self.failure or failure
        return failure

    @property
    def buffer(self) -> _GuardedBinary:
        """The binary stream under standard output, guarded the same way (streamed output writes bytes)."""
        raw = getattr(self._stream, "buffer", None)
        if raw is None:  # a captured text stream: callers fall back to writing text
            raise AttributeError("buffer")
        return _GuardedBinary(self, raw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _GuardedBinary:
    """The binary stream under a `_GuardedOutput`: its failures are the guard's."""

    def __init__(self, guard: _GuardedOutput, raw: Any) -> None:
        self._guard = guard
        self._raw = raw

    def write(self, chunk: bytes) -> int:
        try:
            written: int = self._raw.write(chunk)
        except OSError as failure:
            raise self._guard._failed(failure) from None
        return written

    def flush(self) -> None:
        try:
            self._raw.flush()
        except OSError as failure:
            raise self._guard._failed(failure) from None


def _flush_stdout(name: str) -> bool:
    """Push what is buffered out now, so that a failure to deliver it decides the exit status."""
    if sys.stdout is None:
        return True
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as failure:
        _tell(f"{name}: cannot write standard output: {failure.strerror}")
        _discard_stdout()
        return False
    return True


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's last flush at exit does not fail again
    (Python's documented way out of a broken pipe: docs.python.org, library/signal.html, SIGPIPE note)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _tell(message: str) -> None:
    """A message on standard error, when there is one (never on stdout, where print(file=None) goes)."""
    if sys.stderr is None:
        return
    with contextlib.suppress(OSError, ValueError):
        print(message, file=sys.stderr)


if __name__ == "__main__":
    # `python -m calico_conformance.cli`: run the imported module's main, so that the commands'
    # `UsageFailure` (imported from calico_conformance.cli) is the class main catches, not a copy of it.
    from calico_conformance.cli import main as imported_main

    sys.exit(imported_main())
