"""`calico-conformance selector`, driven through `cli.main` as a user (or a differential tester) runs it."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from calico_conformance.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["selector", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    ("expression", "labels", "printed"),
    [
        ("app == 'web'", '{"app": "web"}', "true\n"),
        ("app == 'web'", '{"app": "db"}', "false\n"),
        ("tier != 'db'", "{}", "true\n"),
        ("", '{"app": "web"}', "true\n"),
        ("has(projectcalico.org/namespace)", '{"projectcalico.org/namespace": "royal-bank"}', "true\n"),
    ],
)
def test_prints_whether_the_selector_matches(
    capsys: pytest.CaptureFixture[str], expression: str, labels: str, printed: str
) -> None:
    assert run(capsys, expression, "--labels", labels) == (0, printed, "")


def test_labels_default_to_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "!has(app)") == (0, "true\n", "")


def test_an_invalid_selector_exits_2_naming_the_position(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, 'app = "web"', "--labels", "{}")
    assert (status, out) == (2, "")
    assert "invalid selector 'app = \"web\"' at position 4:" in err


@pytest.mark.parametrize(
    ("labels", "complaint"),
    [
        ('{"app": ', "--labels is not valid JSON"),
        ('["app"]', "--labels must be a JSON object whose values are strings"),
        ('{"replicas": 3}', "--labels must be a JSON object whose values are strings"),
        ('{"app": null}', "--labels must be a JSON object whose values are strings"),
    ],
)
def test_bad_labels_exit_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], labels: str, complaint: str
) -> None:
    status, out, err = run(capsys, "has(app)", "--labels", labels)
    assert (status, out) == (2, "")
    assert complaint in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([], id="nothing-to-evaluate"),
        pytest.param(["has(a)", "--batch", "cases.jsonl"], id="expression-and-batch"),
        pytest.param(["--labels", "{}", "--batch", "cases.jsonl"], id="labels-and-batch"),
    ],
)
def test_conflicting_or_missing_arguments_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert "--batch" in err


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def case(selector: str, labels: dict[str, str]) -> str:
    return json.dumps({"selector": selector, "labels": labels})


def test_batch_answers_one_line_per_case_in_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    batch = write_lines(
        tmp_path / "cases.jsonl",
        case("app == 'web'", {"app": "web"}),
        case("app == 'web'", {}),
        case("app = 'web'", {"app": "web"}),
        case("", {}),
    )
    status, out, err = run(capsys, "--batch", str(batch))
    assert (status, err) == (0, "")
    answers = [json.loads(line) for line in out.splitlines()]
    assert answers[:2] == [{"valid": True, "matches": True}, {"valid": True, "matches": False}]
    assert answers[2]["valid"] is False
    assert answers[2]["error"].startswith("invalid selector \"app = 'web'\" at position 4: ")
    assert answers[3] == {"valid": True, "matches": True}
    assert len(answers) == 4


def test_batch_output_is_exactly_the_documented_shape(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    batch = write_lines(tmp_path / "cases.jsonl", case("has(a)", {}))
    assert run(capsys, "--batch", str(batch)) == (0, '{"valid": true, "matches": false}\n', "")


def test_batch_reads_stdin_for_dash(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(case("a in {'x'}", {"a": "x"}) + "\n"))
    assert run(capsys, "--batch", "-") == (0, '{"valid": true, "matches": true}\n', "")


@pytest.mark.parametrize(
    ("bad_line", "why"),
    [
        pytest.param('{"selector": "has(a)", ', "not valid JSON", id="truncated-json"),
        pytest.param("", "not valid JSON", id="blank-line"),
        pytest.param('["has(a)", {}]', "expected a JSON object", id="not-an-object"),
        pytest.param('{"selector": "has(a)"}', "missing 'labels'", id="missing-labels"),
        pytest.param('{"labels": {}}', "missing 'selector'", id="missing-selector"),
        pytest.param(
            '{"selector": 7, "labels": {}}', '"selector" must be a string', id="selector-not-a-string"
        ),
        pytest.param(
            '{"selector": "", "labels": {"a": 1}}', '"labels" must be an object', id="label-value-not-string"
        ),
        pytest.param('{"selector": "", "labels": {}, "label": {}}', "unknown key 'label'", id="misspelt-key"),
    ],
)
def test_a_malformed_batch_line_is_answered_on_its_own_line_and_the_rest_still_are(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bad_line: str, why: str
) -> None:
    batch = write_lines(
        tmp_path / "cases.jsonl", case("has(a)", {}), case("has(b)", {}), bad_line, case("has(c)", {"c": ""})
    )
    status, out, err = run(capsys, "--batch", str(batch))
    answers = [json.loads(line) for line in out.splitlines()]
    assert answers[:2] == [{"valid": True, "matches": False}] * 2
    assert answers[2] == {"valid": False, "error": answers[2]["error"]}
    assert answers[2]["error"].startswith(f"{batch}:3: {why}")
    assert answers[3] == {"valid": True, "matches": True}
    assert len(answers) == 4
    # every line answered, yet the exit status says the batch had a bad line, and stderr which
    assert status == 2
    assert f"malformed batch line {batch}:3: {why}" in err


def test_a_malformed_stdin_line_is_named_as_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("{}\n"))
    status, out, err = run(capsys, "--batch", "-")
    assert status == 2
    assert json.loads(out) == {"valid": False, "error": "<stdin>:1: missing 'selector' and 'labels'"}
    assert "<stdin>:1: missing 'selector' and 'labels'" in err


def test_a_batch_line_nested_too_deeply_is_answered_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = '{"selector": "", "labels": ' + "[" * 100_000 + "]" * 100_000 + "}"
    monkeypatch.setattr("sys.stdin", io.StringIO(deep + "\n" + case("", {}) + "\n"))
    status, out, _ = run(capsys, "--batch", "-")
    assert status == 2
    assert [json.loads(line) for line in out.splitlines()] == [
        {"valid": False, "error": "<stdin>:1: nested too deeply; a case is one flat JSON object"},
        {"valid": True, "matches": True},
    ]


def test_an_overlong_batch_line_is_answered_and_the_next_line_still_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    long_line = "x" * (2 * 1024 * 1024)
    monkeypatch.setattr("sys.stdin", io.StringIO(long_line + "\n" + case("", {}) + "\n"))
    status, out, _ = run(capsys, "--batch", "-")
    assert status == 2
    assert [json.loads(line) for line in out.splitlines()] == [
        {"valid": False, "error": "<stdin>:1: a line longer than 1024 KiB; one case a line"},
        {"valid": True, "matches": True},
    ]


def test_deeply_nested_labels_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "has(a)", "--labels", "[" * 100_000 + "]" * 100_000)
    assert (status, out) == (2, "")
    assert "--labels is nested too deeply" in err


def test_closed_stdin_for_batch_dash_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", None)
    status, out, err = run(capsys, "--batch", "-")
    assert (status, out) == (2, "")
    assert "standard input is closed" in err


def test_a_fifo_as_batch_file_is_refused_without_waiting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fifo = tmp_path / "cases.jsonl"
    os.mkfifo(fifo)
    status, out, err = run(capsys, "--batch", str(fifo))
    assert (status, out) == (2, "")
    assert f"{fifo}: not a regular file (a FIFO)" in err


def test_a_missing_batch_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run(capsys, "--batch", str(tmp_path / "absent.jsonl"))
    assert (status, out) == (2, "")
    assert "absent.jsonl" in err


def test_a_batch_file_that_is_not_utf8_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    batch = tmp_path / "cases.jsonl"
    batch.write_bytes(b"\xff\xfe{}\n")
    status, _, err = run(capsys, "--batch", str(batch))
    assert status == 2
    assert f"{batch}:1: not UTF-8 text" in err
