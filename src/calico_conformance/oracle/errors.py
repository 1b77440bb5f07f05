"""Errors that point at the input that caused them: `file:line: why`, the form every bad input takes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in an input file; `line` is 1-based, 0 when unknown."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class LocatedError(ValueError):
    """A ValueError that names where the bad input is. `str()` gives `file:line: why`."""

    def __init__(self, location: Location | None, why: str) -> None:
        self.location = location
        self.why = why
        super().__init__(f"{location}: {why}" if location else why)
