"""Strict YAML: duplicate keys are errors at the duplicate's line, and every value knows where it was written.

The line numbers expected here are those of the YAML text in each test, counted by hand (or, for the
seed files, found by searching the file's text), never taken from the reader's output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from calico_conformance.oracle import yamlsrc
from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.yamlsrc import (
    LocatedDict,
    LocatedList,
    Node,
    load_documents,
    load_file,
    location_of,
)

MANIFESTS = Path(__file__).parent.parent / "data" / "manifests"


@pytest.fixture(autouse=True, params=["libyaml", "python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on both parsers: libyaml where installed, PyYAML's own everywhere else."""
    if request.param == "python":
        monkeypatch.setattr(yamlsrc, "_Loader", yamlsrc._PythonLoader)
    elif not yaml.__with_libyaml__:
        pytest.skip("PyYAML was built without libyaml on this machine")
    return str(request.param)


def line_of(path: Path, marker: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line of `path` containing `marker`."""
    hits = [number for number, line in enumerate(path.read_text().splitlines(), 1) if marker in line]
    return hits[occurrence - 1]


def load_error(text: str) -> LocatedError:
    with pytest.raises(LocatedError) as caught:
        load_documents(text, "input.yaml")
    return caught.value


# --- duplicate keys ------------------------------------------------------------------------------------


def test_a_duplicate_top_level_key_is_an_error_at_the_second_occurrence() -> None:
    error = load_error("a: 1\nb: 2\na: 3\n")
    assert error.location == Location("input.yaml", 3)
    assert "duplicate key 'a'" in error.why
    assert "first written at line 1" in error.why


def test_a_duplicate_key_deep_inside_a_list_item_is_found_with_its_path() -> None:
    text = "spec:\n  egress:\n    - action: Allow\n    - action: Allow\n      protocol: TCP\n      action: Deny\n"
    error = load_error(text)
    assert error.location == Location("input.yaml", 6)
    assert error.why.startswith("spec.egress[1].action: duplicate key 'action'")


def test_a_duplicate_key_in_a_flow_mapping_on_one_line_is_found() -> None:
    error = load_error("ports: {port: 80, port: 81}\n")
    assert error.location == Location("input.yaml", 1)
    assert "earlier on this line" in error.why


def test_seed_002_rule_with_two_destinations_is_rejected_at_the_second_destination() -> None:
    path = MANIFESTS / "broken" / "seed-002-duplicate-destination.yaml"
    with pytest.raises(LocatedError) as caught:
        load_file(path)
    second, first = line_of(path, "      destination:", 3), line_of(path, "      destination:", 2)
    assert caught.value.location == Location(str(path), second)
    assert f"first written at line {first}" in caught.value.why
    assert str(caught.value).startswith(
        f"{path}:{second}: spec.egress[0].destination: duplicate key 'destination'"
    )


def test_the_same_key_in_sibling_mappings_is_not_a_duplicate() -> None:
    (document,) = load_documents("- a: 1\n- a: 2\n", "input.yaml")
    assert document == [{"a": 1}, {"a": 2}]


# --- deliberate refusals and acceptances ------------------------------------------------------------


def test_merge_keys_are_refused_because_they_override_silently() -> None:
    error = load_error("base: &b {a: 1}\nderived:\n  <<: *b\n  a: 2\n")
    assert error.location == Location("input.yaml", 3)
    assert "merge keys" in error.why


def test_plain_anchors_and_aliases_are_accepted() -> None:
    (document,) = load_documents("nets: &n [10.0.0.0/8]\nnotNets: *n\n", "input.yaml")
    assert document["notNets"] == ["10.0.0.0/8"]


def test_empty_documents_are_skipped() -> None:
    documents = load_documents("---\n# only a comment\n---\na: 1\n---\n", "input.yaml")
    assert documents == [{"a": 1}]


def test_json_loads_with_line_numbers() -> None:
    (document,) = load_documents('{\n  "a": 1,\n  "b": [1, 2]\n}\n', "input.json")
    assert document.key_location("b") == Location("input.json", 3)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("a: [1, 2\nb: 3\n", 2, id="unclosed-flow-sequence"),
        pytest.param("a: 1\n b: 2\n", 2, id="bad-indentation"),
        pytest.param("a: b\nc: 'x\n", 2, id="unterminated-quote"),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int) -> None:
    error = load_error(text)
    assert error.location == Location("input.yaml", line)
    assert error.why.startswith("invalid YAML")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("a: 1\nreleased: 2024-13-45\n", 2, id="implicit-date-that-is-no-date"),
        pytest.param("a: 1\nday: 2001-02-29\n", 2, id="implicit-date-past-the-month"),
        pytest.param("a: 1\nb: !!int x\n", 2, id="explicit-int"),
        pytest.param("a: 1\nb: !!float x\n", 2, id="explicit-float"),
        pytest.param("a: 1\nb: !!bool x\n", 2, id="explicit-bool"),
        pytest.param("a: 1\nb: !!timestamp x\n", 2, id="explicit-timestamp"),
        pytest.param("a: 1\nb: !!map [1]\n", 2, id="map-tag-on-a-sequence"),
        pytest.param("a: 1\nb: !!seq {c: 1}\n", 2, id="seq-tag-on-a-mapping"),
        pytest.param("!!map [1]\n", 1, id="map-tag-on-the-document"),
    ],
)
def test_a_value_yaml_cannot_construct_is_an_error_at_its_line(text: str, line: int) -> None:
    """Bad input is `file:line: why` (ARCHITECTURE.md), including scalars whose tag, explicit or
    resolved from their look (an unquoted `2024-13-45` is a timestamp), holds no such value."""
    error = load_error(text)
    assert error.location == Location("input.yaml", line)
    assert error.why.startswith("invalid YAML")


@pytest.mark.parametrize("depth", [101, 999, 1001, 5000])
def test_nesting_deeper_than_the_bound_is_the_same_located_error_on_either_parser(depth: int) -> None:
    # 999 and 1001 straddle libyaml 0.2.5's own flow limit, 5000 is past Python's recursion limit:
    # each used to give a different message or no line, depending on the machine.
    error = load_error("a: " + "[" * depth + "]" * depth + "\n")
    assert error.location == Location("input.yaml", 1)
    assert error.why == "invalid YAML: nested more than 100 levels deep"


def test_nesting_of_exactly_the_bound_reads() -> None:
    # the document's mapping is level 1, so 99 brackets make 100 levels
    (document,) = load_documents("a: " + "[" * 99 + "]" * 99 + "\n", "input.yaml")
    assert isinstance(document["a"], list)


def test_too_deep_block_nesting_names_the_line_where_the_bound_is_crossed() -> None:
    text = "".join("  " * level + f"k{level}:\n" for level in range(120)) + "  " * 120 + "leaf: 1\n"
    error = load_error(text)
    # the mapping holding key k_n is level n + 1 and is written on line n + 1; the key k99 of the
    # 100th mapping is the 101st level, on line 100
    assert error.location == Location("input.yaml", 100)
    assert error.why == "invalid YAML: nested more than 100 levels deep"


def test_too_deep_flow_nesting_over_many_lines_names_the_same_line_on_either_parser() -> None:
    # one `[` a line: the sequence opened on line n is level n + 1 (the document's mapping is level
    # 1), so the 101st level opens on line 100; libyaml's scanner meanwhile looks 1,500 `[` ahead
    error = load_error("a: [\n" + " [\n" * 1500 + " ]" * 1501 + "\n")
    assert error.location == Location("input.yaml", 100)
    assert error.why == "invalid YAML: nested more than 100 levels deep"


def test_nesting_bound_does_not_depend_on_the_recursion_limit() -> None:
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        error = load_error("a: " + "[" * 5000 + "]" * 5000 + "\n")
    finally:
        sys.setrecursionlimit(limit)
    assert error.why == "invalid YAML: nested more than 100 levels deep"


@pytest.mark.parametrize(
    ("text", "line", "character"),
    [("\x00", 1, 0), ("a: 1\nb: caf\u00e9\x1f\n", 2, 0x1F), ("a: 1\nb: \u00e9\u00e9\n\nc: \x07\n", 4, 7)],
)
def test_a_character_yaml_forbids_is_named_at_its_line_on_either_parser(
    text: str, line: int, character: int
) -> None:
    # PyYAML's reader refuses it while the loader is made, libyaml's while parsing, with its offset
    # in bytes (the é before it are two bytes each): both give this one error
    error = load_error(text)
    assert error.location == Location("input.yaml", line)
    assert error.why == f"invalid YAML: character #x{character:04x} is not allowed in YAML text"


def test_an_alias_bomb_is_refused_at_the_alias_that_crosses_the_bound() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 9)]
    error = load_error("\n".join(lines) + "\n")
    # a_n holds 1 + 10 x (nodes of a_(n-1)) nodes: 11, 111, 1,111, 11,111; aliases repeat 110 on
    # line 2, 1,110 on line 3, 11,110 on line 4, so 12,330 before a4 (line 5), whose eighth alias of
    # 11,111 nodes brings the total past 100,000
    assert error.location == Location("input.yaml", 5)
    assert error.why == "invalid YAML: aliases repeat more than 100000 nodes in this document"


def test_an_unreadable_file_is_a_located_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(LocatedError) as caught:
        load_file(missing)
    assert caught.value.location == Location(str(missing))


# --- locations -----------------------------------------------------------------------------------------

TEXT = """\
kind: NetworkPolicy
spec:
  ingress:
    - action: Allow
      source:
        nets:
          - 10.0.0.0/8
          - 10.1.0.0/16
"""


def test_every_mapping_key_and_list_item_has_its_line() -> None:
    (document,) = load_documents(TEXT, "p.yaml")
    assert isinstance(document, LocatedDict)
    assert document.location == Location("p.yaml", 1)
    assert document.key_location("spec") == Location("p.yaml", 2)
    rules = document["spec"]["ingress"]
    assert isinstance(rules, LocatedList)
    assert rules[0].location == Location("p.yaml", 4)
    assert rules[0].key_location("source") == Location("p.yaml", 5)
    nets = rules[0]["source"]["nets"]
    assert nets.item_location(1) == Location("p.yaml", 8)


def test_location_of_reads_values_keys_and_plain_data() -> None:
    (document,) = load_documents(TEXT, "p.yaml")
    assert location_of(document) == Location("p.yaml", 1)
    assert location_of(document, "kind") == Location("p.yaml", 1)
    assert location_of(document["spec"], "ingress") == Location("p.yaml", 3)
    assert location_of({"plain": "dict"}) is None
    assert location_of("a string") is None


# --- the strict reader ---------------------------------------------------------------------------------


def root(text: str) -> Node:
    (document,) = load_documents(text, "p.yaml")
    return Node.root(document, "p.yaml")


def test_an_unknown_field_names_its_path_line_and_the_valid_fields() -> None:
    node = root("spec:\n  selector: all()\n  namespaceSelectr: x\n").require("spec")
    with pytest.raises(LocatedError) as caught:
        node.fields({"selector", "namespaceSelector"}, what="a policy spec")
    assert str(caught.value) == (
        "p.yaml:3: spec.namespaceSelectr: unknown field in a policy spec (did you mean 'namespaceSelector'?); "
        "valid fields: namespaceSelector, selector"
    )


def test_an_unknown_field_with_a_hint_says_where_it_belongs() -> None:
    node = root("rule:\n  action: Allow\n  ports: [80]\n").require("rule")
    with pytest.raises(LocatedError) as caught:
        node.fields({"action", "destination"}, what="a rule", hints={"ports": "put ports under destination"})
    assert "rule.ports: unknown field in a rule (put ports under destination)" in str(caught.value)


def test_paths_follow_keys_and_list_indexes() -> None:
    node = root(TEXT)
    net = node.require("spec").require("ingress").items()[0].require("source").require("nets").items()[1]
    assert net.path == "spec.ingress[0].source.nets[1]"
    assert net.location == Location("p.yaml", 8)
    assert str(net.error("bad")) == "p.yaml:8: spec.ingress[0].source.nets[1]: bad"


@pytest.mark.parametrize(
    ("text", "read", "message"),
    [
        pytest.param(
            "v: '80'\n", Node.integer, "must be an integer, not a string ('80')", id="quoted-number"
        ),
        pytest.param(
            "v: true\n", Node.integer, "must be an integer, not a boolean (true)", id="bool-is-no-int"
        ),
        pytest.param("v: 80\n", Node.string, "must be a string, not a number (80)", id="number-is-no-string"),
        pytest.param("v: [1]\n", Node.number, "must be a number, not a list", id="list-is-no-number"),
        pytest.param("v: x\n", Node.boolean, "must be true or false", id="string-is-no-bool"),
    ],
)
def test_scalar_types_are_checked(text: str, read: object, message: str) -> None:
    node = root(text).require("v")
    with pytest.raises(LocatedError) as caught:
        read(node)  # type: ignore[operator]
    assert caught.value.location == Location("p.yaml", 1)
    assert message in caught.value.why


def test_label_values_must_be_strings_so_unquoted_yes_is_an_error() -> None:
    node = root("labels:\n  team: a\n  enabled: yes\n").require("labels")
    with pytest.raises(LocatedError) as caught:
        node.string_map("labels")
    assert caught.value.location == Location("p.yaml", 3)
    assert "labels values must be strings (quote it), not a boolean (true)" in caught.value.why


def test_a_null_field_counts_as_absent() -> None:
    node = root("spec:\n  ingress:\n  egress: []\n").require("spec")
    assert node.get("ingress") is None
    assert node.get("egress") is not None
    with pytest.raises(LocatedError, match="'ingress' is required"):
        node.require("ingress")


def test_a_plain_dict_reads_with_the_source_as_location() -> None:
    node = Node.root({"spec": {"order": "x"}}, "inline")
    with pytest.raises(LocatedError) as caught:
        node.require("spec").require("order").number()
    assert str(caught.value) == "inline: spec.order: must be a number, not a string ('x')"
