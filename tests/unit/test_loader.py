"""The YAML loader: values keep their file positions, and every error names file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from agape_ops.errors import Problem, RunbookError, RunbookValidationError
from agape_ops.runbooks.catalog import load_catalog
from agape_ops.runbooks.loader import (
    load_runbook_file,
    load_team_file,
    parse_yaml,
    runbook_files,
    validate,
)
from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.team import Team

HEADER = "id: sample\ntitle: Sample\nseverity: sev3\nsummary: A sample.\nowner: platform\n"
STEP = """detection:
  - id: count
    title: Count
    postgres:
      sql: SELECT count(*) AS n FROM orders
    when: n > 0
"""


def problems_of(excinfo: pytest.ExceptionInfo[RunbookValidationError]) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


def test_parse_yaml_remembers_where_each_value_starts() -> None:
    located = parse_yaml(HEADER + STEP, "sample.yaml")
    assert located.data["detection"][0]["postgres"]["sql"].startswith("SELECT")
    assert located.where(("id",)) == (1, 5)
    assert located.where(("detection",)) == (6, 1)
    assert located.where(("detection", 0)) == (7, 5)
    assert located.where(("detection", 0, "postgres")) == (9, 5)
    assert located.where(("detection", 0, "postgres", "sql")) == (10, 12)
    assert located.where(("detection", 0, "when")) == (11, 11)


def test_where_falls_back_to_the_deepest_part_the_file_has() -> None:
    located = parse_yaml(HEADER + STEP, "sample.yaml")
    assert located.where(("detection", 0, "postgres", "max_rows")) == (9, 5)
    assert located.where(("nothing", "here")) == (1, 1)
    problem = located.problem(("detection", 0, "when"), "bad")
    assert str(problem) == "sample.yaml:11:11: bad"


def test_block_scalars_are_located_at_their_indicator() -> None:
    text = (
        HEADER
        + "detection:\n  - id: a\n    title: A\n    postgres:\n      sql: |\n        SELECT 1\n"
    )
    located = parse_yaml(text, "sample.yaml")
    assert located.where(("detection", 0, "postgres", "sql")) == (10, 12)


def test_yaml_syntax_error_is_located_where_the_parser_stopped() -> None:
    with pytest.raises(RunbookValidationError) as excinfo:
        parse_yaml("id: x\ntitle: [unclosed\nseverity: sev1\n", "bad.yaml")
    [problem] = problems_of(excinfo)
    assert problem == "bad.yaml:2:8: YAML syntax: the [ opened on this line is never closed with ]"
    assert excinfo.value.path == "bad.yaml"


def test_every_duplicate_key_is_reported_at_its_second_occurrence() -> None:
    text = "id: a\ntitle: A\nid: b\ninputs:\n  x: {description: d, description: e}\n"
    with pytest.raises(RunbookValidationError) as excinfo:
        parse_yaml(text, "dup.yaml")
    assert problems_of(excinfo) == [
        "dup.yaml:3:1: duplicate key 'id' in the same mapping",
        "dup.yaml:5:23: duplicate key 'description' in the same mapping",
    ]


def test_an_unknown_key_holding_a_block_is_reported_on_its_own_line() -> None:
    text = HEADER + "detection:\n  - id: a\n    title: A\n    manual: {items: [x]}\n"
    text += "    extras:\n      note: n\n"
    with pytest.raises(RunbookValidationError) as excinfo:
        validate(parse_yaml(text, "s.yaml"), Runbook)
    assert problems_of(excinfo) == [
        "s.yaml:10:5: unknown key 'extras' (check the spelling; see `agape-ops schema`)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("owner: !team platform\n", "1:8: cannot read this value: could not determine"),
        ("owner: !!python/object:os.system x\n", "1:8: cannot read this value:"),
        ("summary: x\nseverity: !!int high\n", "2:11: cannot read 'high' as int"),
        ("auto: !!bool maybe\n", "1:7: cannot read 'maybe' as bool"),
        ("since: !!timestamp 2024-13-45\n", "1:8: cannot read '2024-13-45' as timestamp"),
        ("? [a, b]\n: x\n", "1:3: a key must be a plain word, not a list or a mapping"),
        ("{a: 1}: x\n", "1:1: a key must be a plain word"),
        ("steps: &s [*s]\n", "1:8: an alias refers to a value that contains it"),
        ("title: x\nsummary: a\x07b\n", "2:11: YAML: character U+0007 is not allowed"),
        ("a: " + "[" * 1000 + "]" * 1000 + "\n", "1:1: YAML nests too deeply to read"),
    ],
    ids=[
        "unknown-tag",
        "python-tag",
        "bad-int",
        "bad-bool",
        "bad-timestamp",
        "list-key",
        "mapping-key",
        "recursive-alias",
        "control-character",
        "deep-nesting",
    ],
)
def test_yaml_that_cannot_be_read_is_a_located_problem(text: str, expected: str) -> None:
    with pytest.raises(RunbookValidationError) as excinfo:
        parse_yaml(text, "odd.yaml")
    [problem] = problems_of(excinfo)
    assert problem.startswith(f"odd.yaml:{expected}")


def test_aliases_that_expand_without_end_are_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for depth in range(1, 9):
        name, inner = chr(ord("a") + depth), chr(ord("a") + depth - 1)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{inner}"] * 9) + "]")
    with pytest.raises(RunbookValidationError) as excinfo:
        parse_yaml("\n".join(lines) + "\n", "bomb.yaml")
    [problem] = problems_of(excinfo)
    assert "expands to more than 100000 values (aliases?)" in problem


def test_an_empty_document_is_an_empty_mapping() -> None:
    assert parse_yaml("# nothing\n", "empty.yaml").data == {}


def test_validate_locates_unknown_missing_and_wrong_values() -> None:
    text = (
        "id: sample\ntitle: Sample\nseverity: high\nsummary: S\n"
        "detection:\n  - id: a\n    titel: A\n    manual: {items: [do it]}\n"
    )
    located = parse_yaml(text, "sample.yaml")
    with pytest.raises(RunbookValidationError) as excinfo:
        validate(located, Runbook)
    assert problems_of(excinfo) == [
        "sample.yaml:3:11: severity: Input should be 'sev1', 'sev2', 'sev3' or 'sev4'",
        "sample.yaml:1:1: missing required key 'owner'",
        "sample.yaml:6:5: missing required key 'title' in detection.0",
        "sample.yaml:7:5: unknown key 'titel': did you mean 'title'?",
    ]


def test_a_model_validator_error_points_at_its_step() -> None:
    step = "  - id: a\n    title: A\n    manual: {items: [x]}\n    alert: {values: [v]}\n"
    text = HEADER + "detection:\n" + step
    with pytest.raises(RunbookValidationError) as excinfo:
        validate(parse_yaml(text, "s.yaml"), Runbook)
    [problem] = problems_of(excinfo)
    assert problem.startswith("s.yaml:7:5: detection.0: a step names exactly one of")
    assert problem.endswith("(this one names alert, manual)")


def test_load_runbook_file_requires_the_id_to_be_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(HEADER)
    with pytest.raises(RunbookValidationError) as excinfo:
        load_runbook_file(path)
    assert problems_of(excinfo) == [
        f"{path}:1:5: id 'sample' must equal the file name 'other'",
    ]


def test_load_runbook_file_refuses_a_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(RunbookValidationError) as excinfo:
        load_runbook_file(path)
    assert problems_of(excinfo) == [f"{path}:1:1: a runbook is a mapping (id:, title:, ...)"]


def test_load_runbook_file_says_when_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(RunbookError, match=r"no such runbook file or folder"):
        load_runbook_file(tmp_path / "missing.yaml")


def test_load_runbook_file_returns_the_model_and_its_positions(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    path.write_text(HEADER + STEP)
    runbook, located = load_runbook_file(path)
    assert runbook.id == "sample"
    assert [s.id for s in runbook.steps()] == ["count"]
    assert located.path == str(path)
    assert located.where(("detection", 0, "id")) == (7, 9)


def test_load_team_file_validates_the_team(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text("responders: [U1]\napprovers: [U2]\nescalation:\n  - after_minutes: 10\n")
    with pytest.raises(RunbookValidationError) as excinfo:
        load_team_file(path)
    assert problems_of(excinfo) == [f"{path}:4:5: missing required key 'notify' in escalation.0"]
    path.write_text("responders: [U1]\nescalation:\n  - {after_minutes: 10, notify: [S1]}\n")
    team = load_team_file(path)
    assert isinstance(team, Team)
    assert team.escalation[0].notify == ["S1"]


def test_runbook_files_expands_folders_and_keeps_files_as_given(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "c.yaml", "notes.txt"):
        (tmp_path / name).write_text("")
    single = tmp_path / "notes.txt"
    assert runbook_files([tmp_path, single]) == [
        tmp_path / "a.yml",
        tmp_path / "b.yaml",
        tmp_path / "c.yaml",
        single,
    ]


def test_load_catalog_lints_unless_told_not_to(tmp_path: Path) -> None:
    (tmp_path / "sample.yaml").write_text(HEADER + STEP.replace("when: n > 0", "when: m > 0"))
    linted = load_catalog([tmp_path])
    assert len(linted) == 0
    assert [p.line for p in linted.problems] == [11]
    unlinted = load_catalog([tmp_path], lint=False)
    assert [r.id for r in unlinted] == ["sample"]
    assert unlinted.get("sample") is not None
    assert unlinted.sources["sample"].path == str(tmp_path / "sample.yaml")


def test_load_catalog_reports_bad_files_and_keeps_the_good(tmp_path: Path) -> None:
    (tmp_path / "sample.yaml").write_text(HEADER + STEP)
    (tmp_path / "broken.yaml").write_text("id: broken\ntitle: [\n")
    (tmp_path / "sample.yml").write_text(HEADER)
    catalog = load_catalog([tmp_path])
    assert list(catalog.runbooks) == ["sample"]
    assert [Path(p.path).name for p in catalog.problems] == ["broken.yaml", "sample.yml"]
    assert "runbook id 'sample' is loaded twice" in catalog.problems[1].message


def test_problems_compare_and_hash_by_their_text() -> None:
    one = Problem("a.yaml", 1, 2, "m")
    assert one == Problem("a.yaml", 1, 2, "m")
    assert one != Problem("a.yaml", 1, 3, "m")
    assert len({one, Problem("a.yaml", 1, 2, "m")}) == 1
    assert repr(one) == "Problem(a.yaml:1:2: m)"


@pytest.mark.parametrize(
    ("value", "tag"),
    [("!!int ''", "int"), ("!!float ''", "float"), ("!!timestamp 'soon'", "timestamp")],
)
def test_a_tag_its_value_cannot_hold_is_one_problem_at_its_place(
    tmp_path: Path, value: str, tag: str
) -> None:
    # Found by the fuzz test: PyYAML's constructors raise IndexError / AttributeError here.
    path = tmp_path / "tagged.yaml"
    path.write_text(f"id: tagged\nseverity: {value}\n")
    with pytest.raises(RunbookValidationError) as excinfo:
        load_runbook_file(path)
    assert any(f"{path}:2:11: cannot read" in p and f"as {tag}" in p for p in problems_of(excinfo))
