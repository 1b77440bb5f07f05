"""Strict YAML with line numbers: the one reader every manifest, scenario and policy file goes through.

Most YAML loaders keep the *last* of two equal keys in a mapping without a word. For policy that is a
security bug: a rule written with two `destination:` keys (seed 002 has exactly this) silently loses its
first destination and allows more than its author meant. This reader refuses duplicate keys, names the
line of the second occurrence, and keeps a `Location` for every mapping, key and sequence item so that
every later error can say `file:line: why`.

Deliberate deviations from plain YAML, each because it can change meaning without anyone noticing:

* duplicate keys are an error (above);
* merge keys (`<<: *anchor`) are an error: a merge silently lets one mapping override another's keys,
  the same defect as a duplicate key, and `kubectl` manifests never need it. Anchors and aliases
  without merging are accepted (they only repeat a value, which hides nothing);
* nesting deeper than `yaml_bounds.MAX_NESTING` levels, and aliases that repeat more than
  `yaml_bounds.MAX_ALIASED_NODES` nodes in all, are errors at the line where the bound is crossed, the
  same on either parser (`yaml_bounds.py` says why).

Files are read through `inputs.read_input_text`: regular files only, of bounded size.

`Node` is the strict *reader* on top: a value together with its dotted path (`spec.egress[0].ports`)
and location, so loaders can check types, reject unknown fields and raise located errors in one line.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml: `_Loader` is then the Python loader, and the
    CParser = yaml.parser.Parser  # type: ignore[assignment,misc]  # libyaml one is never made

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.inputs import read_input_text
from calico_conformance.oracle.yaml_bounds import BoundedComposer

MERGE_KEY_TAG = "tag:yaml.org,2002:merge"


class LocatedDict(dict[Any, Any]):
    """A YAML mapping that remembers where it, and each of its keys, was written."""

    location: Location
    key_locations: dict[Any, Location]

    def key_location(self, key: Any) -> Location:
        """Where `key` is written; the mapping's own location when the key is absent."""
        return self.key_locations.get(key, self.location)


class LocatedList(list[Any]):
    """A YAML sequence that remembers where it, and each of its items, was written."""

    location: Location
    item_locations: list[Location]

    def item_location(self, index: int) -> Location:
        if 0 <= index < len(self.item_locations):
            return self.item_locations[index]
        return self.location


class _StrictConstruction(SafeConstructor):
    """Builds Located containers and refuses duplicate and merge keys; mixed into a parser below.

    It keeps the path of the value being built (`spec.egress[0]`) so that a duplicate key is reported
    with its path as well as its line.
    """

    source: str
    path: list[str | int]

    def _location(self, node: yaml.Node) -> Location:
        return Location(self.source, node.start_mark.line + 1)

    def _path_text(self, last: str | int) -> str:
        text = ""
        for part in (*self.path, last):
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        return text

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """PyYAML's construction, with a value its tag cannot hold made a located error.

        PyYAML's scalar constructors trust the resolver: `!!int x`, `!!bool x`, or an unquoted
        `2024-13-45` (it looks like a timestamp, so it is one) fail inside them with a bare ValueError,
        KeyError or AttributeError that names neither file nor line.
        """
        try:
            return super().construct_object(node, deep=deep)
        except (LocatedError, yaml.YAMLError):
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
            # Only a ValueError's text is about the value ("month must be in 1..12"); the others
            # describe PyYAML's internals.
            detail = f" ({error})" if type(error) is ValueError else ""
            kind = node.tag.rpartition(":")[2]
            raise LocatedError(
                self._location(node),
                f"invalid YAML: {_shown(node)} is not a valid {kind}{detail}; quote it if it is text",
            ) from None

    def _require_kind(self, node: yaml.Node, kind: type[yaml.Node], what: str) -> None:
        if not isinstance(node, kind):
            raise LocatedError(self._location(node), f"invalid YAML: {node.tag} needs {what}")

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        for key_node, _ in node.value:
            if key_node.tag == MERGE_KEY_TAG:
                raise LocatedError(
                    self._location(key_node),
                    "YAML merge keys (<<) are not accepted: a merge can silently override keys; "
                    "write the mapping out in full",
                )

    def construct_located_mapping(self, node: yaml.MappingNode) -> Iterator[LocatedDict]:
        self._require_kind(node, yaml.MappingNode, "a mapping")
        mapping = LocatedDict()
        mapping.location = self._location(node)
        mapping.key_locations = {}
        yield mapping
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise LocatedError(self._location(key_node), "a mapping key must be a plain value") from None
            if key in mapping.key_locations:
                first = mapping.key_locations[key]
                second = self._location(key_node)
                earlier = "earlier on this line" if first.line == second.line else f"at line {first.line}"
                raise LocatedError(
                    second,
                    f"{self._path_text(str(key))}: duplicate key {key!r} (first written {earlier}); "
                    "YAML keeps only the last one, so the first would be silently lost",
                )
            mapping.key_locations[key] = self._location(key_node)
            self.path.append(str(key))
            mapping[key] = self.construct_object(value_node, deep=True)
            self.path.pop()

    def construct_located_sequence(self, node: yaml.SequenceNode) -> Iterator[LocatedList]:
        self._require_kind(node, yaml.SequenceNode, "a sequence")
        sequence = LocatedList()
        sequence.location = self._location(node)
        sequence.item_locations = [self._location(child) for child in node.value]
        yield sequence
        for index, child in enumerate(node.value):
            self.path.append(index)
            sequence.append(self.construct_object(child, deep=True))
            self.path.pop()


def _shown(node: yaml.Node) -> str:
    """A node's text for a message: a scalar's value, quoted; a collection by its kind."""
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value)
    return "a mapping" if isinstance(node, yaml.MappingNode) else "a sequence"


class _PythonLoader(_StrictConstruction, BoundedComposer, yaml.SafeLoader):
    """The strict loader on PyYAML's pure-Python parser."""


class _LibyamlLoader(_StrictConstruction, BoundedComposer, CParser, Resolver):
    """The strict loader on libyaml's parser: the same result about four times faster, which matters
    for policy sets of thousands of objects. It composes with PyYAML's Python composer (the
    `BoundedComposer` before `CParser` in the bases), not libyaml's, so that both loaders share one
    nesting bound; that costs about a quarter of the speed-up."""

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        Composer.__init__(self)


# `loader` is Any: PyYAML's stubs bound a constructor's loader to PyYAML's own loader classes, and
# _LibyamlLoader is built from parts (see above), not from CSafeLoader.
def _construct_mapping(loader: Any, node: yaml.MappingNode) -> Iterator[LocatedDict]:
    strict: _StrictConstruction = loader
    return strict.construct_located_mapping(node)


def _construct_sequence(loader: Any, node: yaml.SequenceNode) -> Iterator[LocatedList]:
    strict: _StrictConstruction = loader
    return strict.construct_located_sequence(node)


for _loader in (_PythonLoader, _LibyamlLoader):
    _loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
    _loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)

_Loader: type[_PythonLoader] | type[_LibyamlLoader] = (
    _LibyamlLoader if yaml.__with_libyaml__ else _PythonLoader
)


# libyaml's scanner reads a run of `[` or `{` ahead of the parser (each could open a simple key), so a
# long run reaches libyaml's own flow-depth limit (0.2.5: scanner.c, "exceeded maximum nesting depth")
# before the composer sees level MAX_NESTING. Such a text is read again by the Python parser, which
# has no limit of its own, so the error is the composer's on either parser.
LIBYAML_DEPTH_PROBLEM = "maximum nesting depth"


def load_documents(text: str, source: str) -> list[Any]:
    """Every non-empty document of `text` (YAML or JSON); `source` names the file in errors."""
    try:
        return _load_documents(_Loader, text, source)
    except yaml.MarkedYAMLError as error:
        if LIBYAML_DEPTH_PROBLEM not in (error.problem or ""):
            raise _located(error, source) from None
        return _load_documents(_PythonLoader, text, source)


def _located(error: yaml.MarkedYAMLError, source: str) -> LocatedError:
    mark = error.problem_mark or error.context_mark
    if error.context_mark is not None and "end of stream" in (error.problem or ""):
        mark = error.context_mark  # where the unfinished construct starts, not the end of the file
    line = mark.line + 1 if mark is not None else 0
    why = " ".join(part for part in (error.context, error.problem) if part) or "invalid YAML"
    return LocatedError(Location(source, line), f"invalid YAML: {why}")


def _load_documents(
    loader_class: type[_PythonLoader] | type[_LibyamlLoader], text: str, source: str
) -> list[Any]:
    """`load_documents` on one parser; a libyaml depth error escapes as the MarkedYAMLError."""
    try:
        loader = loader_class(text)  # the Python reader checks every character here already
    except yaml.reader.ReaderError as error:
        raise _unreadable(error, text, source, offset_in_bytes=False) from None
    loader.source = source
    loader.path = []
    try:
        documents: list[Any] = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            document = loader.get_data()
            if document is not None:  # an empty document (`---` alone, comments only) holds nothing
                documents.append(document)
        return documents
    except yaml.MarkedYAMLError as error:
        if LIBYAML_DEPTH_PROBLEM in (error.problem or "") and loader_class is not _PythonLoader:
            raise
        raise _located(error, source) from None
    except yaml.reader.ReaderError as error:
        raise _unreadable(error, text, source, offset_in_bytes=loader_class is not _PythonLoader) from None
    except yaml.YAMLError as error:
        raise LocatedError(Location(source), f"invalid YAML: {error}") from None
    except RecursionError:
        # MAX_NESTING keeps composition and construction far inside the default limit; this is reached
        # only when the caller itself already stands hundreds of frames deep.
        raise LocatedError(Location(source), "invalid YAML: nested too deeply to read") from None
    finally:
        loader.dispose()


def _unreadable(
    error: yaml.reader.ReaderError, text: str, source: str, *, offset_in_bytes: bool
) -> LocatedError:
    """A character YAML does not allow (a control character, a lone surrogate), at its line; the same
    text from both parsers (libyaml counts its offset in UTF-8 bytes, PyYAML's reader in characters)."""
    if offset_in_bytes:
        line = text.encode("utf-8", "surrogatepass")[: error.position].count(b"\n") + 1
    else:
        line = text.count("\n", 0, error.position) + 1
    return LocatedError(
        Location(source, line), f"invalid YAML: character #x{error.character:04x} is not allowed in YAML text"
    )


def load_file(path: str | Path) -> list[Any]:
    """`load_documents` of a file; an unreadable file, or one that is no regular file or too large
    (`inputs.read_input_text`), is a `LocatedError` naming it."""
    return load_documents(read_input_text(path), str(path))


def location_of(value: Any, key: str | None = None) -> Location | None:
    """Where `value` (or its `key`, for a mapping) was written, if it came from this reader."""
    if key is not None and isinstance(value, LocatedDict):
        return value.key_location(key)
    location = getattr(value, "location", None)
    return location if isinstance(location, Location) else None


# --- the strict reader ------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


@dataclass(frozen=True)
class Node:
    """A value read from a file, with its dotted path and location, for located, typed access."""

    value: Any
    path: str  # e.g. "spec.egress[0].destination"; "" for a document root
    location: Location

    @classmethod
    def root(cls, value: Any, source: str, path: str = "") -> Node:
        return cls(value, path, location_of(value) or Location(source))

    def error(self, why: str) -> LocatedError:
        """A LocatedError at this node: `file:line: path: why`."""
        return LocatedError(self.location, f"{self.path}: {why}" if self.path else why)

    def _child_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    # --- mappings ---

    def fields(self, allowed: Collection[str], *, what: str, hints: Mapping[str, str] | None = None) -> Node:
        """This node as a mapping whose keys are all in `allowed`; `what` names it in the message."""
        mapping = self.mapping(what)
        for key in mapping:
            if not isinstance(key, str):
                raise self.error(f"{what} keys must be strings, not {_type_name(key)}")
            if key not in allowed:
                raise self._unknown_field(key, allowed, what, hints or {})
        return self

    def _unknown_field(
        self, key: str, allowed: Collection[str], what: str, hints: Mapping[str, str]
    ) -> LocatedError:
        why = f"unknown field in {what}"
        if key in hints:
            why += f" ({hints[key]})"
        else:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            if close:
                why += f" (did you mean {close[0]!r}?)"
        why += "; valid fields: " + ", ".join(sorted(allowed))
        where = self.value.key_location(key) if isinstance(self.value, LocatedDict) else self.location
        return LocatedError(where, f"{self._child_path(key)}: {why}")

    def mapping(self, what: str) -> Mapping[Any, Any]:
        if not isinstance(self.value, dict):
            raise self.error(f"{what} must be a mapping, not {_type_name(self.value)}")
        return self.value

    def has(self, key: str) -> bool:
        """True when `key` is present with a non-null value (a null field means "not set")."""
        return isinstance(self.value, dict) and self.value.get(key) is not None

    def get(self, key: str) -> Node | None:
        """The child `key`, or None when absent or null."""
        if not self.has(key):
            return None
        value = self.value[key]
        location = self.value.key_location(key) if isinstance(self.value, LocatedDict) else self.location
        return Node(value, self._child_path(key), location)

    def require(self, key: str) -> Node:
        child = self.get(key)
        if child is None:
            raise self.error(f"{key!r} is required")
        return child

    def keys(self) -> list[str]:
        return [key for key in self.mapping("value") if isinstance(key, str)]

    # --- sequences ---

    def items(self, what: str = "value") -> list[Node]:
        """The items of this node, which must be a list."""
        if not isinstance(self.value, list):
            raise self.error(f"{what} must be a list, not {_type_name(self.value)}")
        items: list[Node] = []
        for index, item in enumerate(self.value):
            if isinstance(item, (LocatedDict, LocatedList)):
                location = item.location
            elif isinstance(self.value, LocatedList):
                location = self.value.item_location(index)
            else:
                location = self.location
            items.append(Node(item, f"{self.path}[{index}]", location))
        return items

    # --- scalars ---

    def string(self) -> str:
        if not isinstance(self.value, str):
            raise self.error(f"must be a string, not {_type_name(self.value)}")
        return self.value

    def integer(self) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.error(f"must be an integer, not {_type_name(self.value)}")
        return self.value

    def number(self) -> float:
        """A finite number. YAML's `.nan` and `.inf` are refused: no field means them, JSON (what kubectl
        sends the API server) cannot carry them, and NaN compares false with everything, so an order of
        `.nan` would sort wherever the comparison happened to leave it."""
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise self.error(f"must be a number, not {_type_name(self.value)}")
        try:
            number = float(self.value)
        except OverflowError:
            raise self.error(f"must be a finite number; {self.value} is too large") from None
        if not math.isfinite(number):
            raise self.error(
                f"must be a finite number, not {self.value}: JSON, which kubectl sends to the "
                "API server, has no NaN or infinity"
            )
        return number

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"must be true or false, not {_type_name(self.value)}")
        return self.value

    def strings(self) -> list[str]:
        return [item.string() for item in self.items()]

    def string_map(self, what: str) -> dict[str, str]:
        """A mapping of strings to strings (labels, annotations): `yes`/`80` unquoted are errors."""
        result: dict[str, str] = {}
        for key in self.mapping(what):
            if not isinstance(key, str):
                raise self.error(f"{what} keys must be strings, not {_type_name(key)}")
            child = self.get(key)
            if child is None:
                raise self.error(f"{what} value of {key!r} must be a string, not nothing (null)")
            if not isinstance(child.value, str):
                raise child.error(f"{what} values must be strings (quote it), not {_type_name(child.value)}")
            result[key] = child.value
        return result
