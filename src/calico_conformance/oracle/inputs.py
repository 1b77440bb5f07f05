"""Reading an input file as the user names it: a regular file, of bounded size, in UTF-8.

Every file the commands and the suites read (scenarios, layouts, policy manifests, kind configs, batch
files) goes through here. Anything that is not a regular file is refused at once, because a FIFO opened
for reading blocks until a writer comes (a hang) and a device such as `/dev/zero` never ends (a read
that grows until memory runs out); a regular file larger than `MAX_INPUT_BYTES` is refused too, saying
the bound. Errors are `LocatedError`s naming the file (and, for bytes that are not UTF-8, the line).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from calico_conformance.oracle.errors import LocatedError, Location

# The largest input file read: a policy set of 10,000 objects is about 6 MiB of YAML. Without a bound,
# `/dev/zero` or a runaway generator's output is read until memory runs out.
MAX_INPUT_BYTES = 64 * 1024 * 1024


def read_input_text(path: str | Path, *, limit: int | None = None) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes; anything else is a `LocatedError`."""
    where = Location(str(path))
    with open_input(path) as stream:
        return read_input_stream(stream, where, limit=limit)


def open_input(path: str | Path) -> BinaryIO:
    """`path` opened for reading in binary, when it is a regular file; otherwise a `LocatedError`.

    The file is opened non-blocking and checked with `fstat` on the open descriptor: a FIFO opened for
    reading blocks until a writer comes (a hang), and a device such as `/dev/zero` never ends.
    """
    where = Location(str(path))
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise LocatedError(where, f"cannot read file: {error.strerror or error}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        if stat.S_ISDIR(mode):
            raise LocatedError(where, "is a directory, not a file")
        raise LocatedError(where, f"not a regular file ({_file_kind(mode)}); give a file")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def read_input_stream(stream: BinaryIO, where: Location, *, limit: int | None = None) -> str:
    """The UTF-8 text of an already open stream of at most `limit` bytes (default MAX_INPUT_BYTES)."""
    limit = MAX_INPUT_BYTES if limit is None else limit
    try:
        data = stream.read(limit + 1)
    except OSError as error:
        raise LocatedError(where, f"cannot read: {error.strerror or error}") from None
    return decode_input(data, where, limit=limit)


def decode_input(data: bytes, where: Location, *, limit: int | None = None) -> str:
    """`data` as UTF-8 text; more than `limit` bytes, or bytes that are not UTF-8, are located errors."""
    limit = MAX_INPUT_BYTES if limit is None else limit
    if len(data) > limit:
        size = f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"
        raise LocatedError(where, f"larger than {size}, the most an input file may be; is it the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = data.count(b"\n", 0, bad.start) + 1
        raise LocatedError(Location(where.file, line), f"not UTF-8 text ({bad.reason})") from None


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a file")
