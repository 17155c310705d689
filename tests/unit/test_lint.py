"""The runbook linter: every check catches its mistake at the right line, good runbooks pass.

Each file in tests/fixtures/broken/ is wrong on purpose. The lines where a problem must be
reported carry a marker comment, ``# expect: <message fragment>`` (or ``# expect col N: ...``
when the column matters too); the linter must report exactly those problems and no others.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agape_ops.errors import Problem
from agape_ops.runbooks.catalog import load_catalog
from agape_ops.runbooks.lint import lint_paths, lint_runbook
from agape_ops.runbooks.loader import parse_yaml, validate
from agape_ops.runbooks.model import PostgresCall, Runbook
from agape_ops.runbooks.sql import analyse
from agape_ops.runbooks.sql_schema import backend_schema, tables_of

FIXTURES = Path(__file__).parent.parent / "fixtures"
BROKEN = sorted((FIXTURES / "broken").glob("*.yaml"))
GOOD = sorted((FIXTURES / "good").glob("*.yaml"))
# `# expect: ...` on the problem's line; `# expect line N col C: ...` for a problem inside a
# block of SQL, where a comment would be part of the SQL.
MARKER = re.compile(r"#\s*expect(?:\s+line\s+(\d+))?(?:\s+col\s+(\d+))?:\s*(.+?)\s*$")

HEADER = "id: inline\ntitle: Inline\nseverity: sev3\nsummary: Inline runbook.\nowner: platform\n"


def expectations(path: Path) -> list[tuple[int, int | None, str]]:
    """Return (line, column or None, fragment) for every marker comment in a fixture."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if match := MARKER.search(line):
            at = int(match.group(1)) if match.group(1) else number
            column = int(match.group(2)) if match.group(2) else None
            found.append((at, column, match.group(3)))
    return found


def matches(problem: Problem, expected: tuple[int, int | None, str]) -> bool:
    line, column, fragment = expected
    return (
        problem.line == line
        and (column is None or problem.column == column)
        and fragment in problem.message
    )


def lint_text(tmp_path: Path, body: str, name: str = "inline") -> list[Problem]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(HEADER.replace("inline", name) + body, encoding="utf-8")
    return lint_paths([path])


def test_there_is_a_broken_fixture_for_every_check() -> None:
    names = {p.stem for p in BROKEN}
    assert len(names) >= 30
    for required in (
        "yaml-syntax",
        "wrong-type",
        "unknown-key",
        "id-mismatch",
        "duplicate-yaml-key",
        "duplicate-step-id",
        "read-step-writes",
        "shell-string-command",
        "row-actions",
        "references-from",
        "misplaced-guards",
        "monitor",
        "recheck-nothing",
    ):
        assert required in names


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_fixture_reports_exactly_its_marked_problems(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no `# expect:` marker"
    problems = lint_paths([path])
    assert all(p.path == str(path) for p in problems)
    unexpected = [p for p in problems if not any(matches(p, e) for e in expected)]
    missed = [e for e in expected if not any(matches(p, e) for p in problems)]
    assert not unexpected, f"problems nobody expected: {unexpected}"
    assert not missed, f"expected but not reported: {missed}; got {problems}"


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_runbook_lints_clean(path: Path) -> None:
    assert lint_paths([path]) == []


def test_the_shipped_runbooks_lint_clean() -> None:
    shipped = Path(__file__).parent.parent.parent / "runbooks"
    if not any(shipped.glob("*.yaml")):
        pytest.skip("no runbooks written yet")
    assert [str(p) for p in lint_paths([shipped])] == []


def test_load_catalog_loads_the_valid_and_reports_the_invalid_without_raising() -> None:
    catalog = load_catalog([FIXTURES / "good", FIXTURES / "broken"])
    assert sorted(catalog.runbooks) == sorted(p.stem for p in GOOD)
    reported = {Path(p.path).name for p in catalog.problems}
    assert reported == {p.name for p in BROKEN}


def test_lint_runbook_locates_a_problem_from_the_parsed_positions() -> None:
    text = HEADER + "detection:\n  - id: a\n    title: A\n    alert: {values: [x]}\n    when: y\n"
    located = parse_yaml(text, "inline.yaml")
    runbook = validate(located, Runbook)
    [problem] = lint_runbook(runbook, located)
    assert (problem.line, problem.column) == (10, 11)
    assert "`y`, which this alert step does not produce" in problem.message


def test_lint_paths_reports_a_missing_file_and_an_empty_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    problems = lint_paths([missing, tmp_path])
    assert [str(p) for p in problems] == [
        f"{tmp_path}:1:1: no runbook files (*.yaml) in this folder",
        f"{missing}:1:1: no such runbook file or folder (RUNBOOKS_DIR names the runbooks folder)",
    ]


def test_lint_paths_checks_the_team_file(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text("responders: [U1]\napprovers: U2\nescalation:\n  - after_minutes: 0\n")
    problems = lint_paths([FIXTURES / "good" / "minimal.yaml"], team_file=team)
    assert [(p.line, p.column) for p in problems] == [(2, 12), (4, 20), (4, 5)]
    assert "approvers: Input should be a valid list" in problems[0].message
    assert "greater than 0" in problems[1].message
    assert "missing required key 'notify'" in problems[2].message


def test_runbook_id_loaded_twice_is_reported(tmp_path: Path) -> None:
    body = (FIXTURES / "good" / "minimal.yaml").read_text()
    (tmp_path / "minimal.yaml").write_text(body)
    (tmp_path / "minimal.yml").write_text(body)
    [problem] = lint_paths([tmp_path])
    assert problem.path.endswith("minimal.yml")
    assert "runbook id 'minimal' is also in" in problem.message


def test_templates_may_use_jinja_names_loops_and_the_context(tmp_path: Path) -> None:
    body = """detection:
  - id: queues
    title: Queues
    redis: {command: queue_stats}
    when: max_backlog > 100 and alert.labels.env == 'prod' and run.id is defined
    finding: >-
      {% set ns = namespace(n=0) %}{% for q in rows %}{{ loop.index }} {{ q.queue }}
      {% endfor %}{{ range(3) | list | length }} {{ values.total_backlog }} {{ none }}
"""
    assert lint_text(tmp_path, body) == []


def test_a_read_may_read_its_columns_and_their_types_and_nothing_else(tmp_path: Path) -> None:
    body = """detection:
  - id: stock
    title: Stock
    postgres: {sql: "SELECT sku, stock FROM product_variants"}
    when: row_count > 0 and column_types.stock == 'integer'
    finding: "{{ sku }} {{ stock }} {{ rows_changed }}"
"""
    [problem] = lint_text(tmp_path, body)
    assert "finding reads `rows_changed`, which this postgres step does not produce" in (
        problem.message
    )


def test_write_without_preview_reads_the_target_tables_columns(tmp_path: Path) -> None:
    body = """recovery:
  - id: fix
    title: Fix
    risk: write
    confirm: Sure?
    postgres:
      sql: UPDATE product_variants SET stock = 0 WHERE stock < 0
      max_rows: 5
    finding: "{{ rows_changed }} of {{ preview_count }}: {{ sku }} {{ colour }}"
"""
    [problem] = lint_text(tmp_path, body)
    assert "finding reads `colour`" in problem.message


def test_unknown_field_lists_what_the_step_has_when_nothing_is_close(tmp_path: Path) -> None:
    body = """detection:
  - id: ping
    title: Ping
    redis: {command: ping}
    when: zzz
"""
    [problem] = lint_text(tmp_path, body)
    assert problem.message.endswith("(it has: latency_ms, reachable)")


def test_settings_and_row_are_refused_in_parameters_but_row_is_fine_in_findings(
    tmp_path: Path,
) -> None:
    body = """detection:
  - id: health
    title: Health
    http: {url: "https://shop.test/{{ row.url | segment }}"}
    finding: "{{ row.url }} {{ settings.paystack_status_url }}"
"""
    [problem] = lint_text(tmp_path, body)
    assert problem.message.startswith("http.url reads `row`, but parameters are rendered")


def test_shell_templates_with_spaces_are_one_argument(tmp_path: Path) -> None:
    body = """actions:
  - id: process
    title: Process
    risk: write
    confirm: Process?
    shell:
      command: [echo, "{{ settings.admin_api_url }}"]
      env: {TARGET: "{{ inputs.nope }}"}
"""
    [problem] = lint_text(tmp_path, body)
    assert "shell.env.TARGET reads `inputs.nope`, which is not declared" in problem.message


def test_admin_api_path_and_json_strings_are_parameter_templates(tmp_path: Path) -> None:
    body = """recovery:
  - id: post
    title: Post
    risk: write
    confirm: Sure?
    admin_api:
      action: call
      method: POST
      path: "/api/v1/admin/{{ status | segment }}"
      json: {ids: ["{{ steps.post.id }}"]}
"""
    problems = lint_text(tmp_path, body)
    assert [p.message.split(",")[0] for p in problems] == [
        "admin_api.path reads `status`",
        "admin_api.json.ids.0 reads `steps.post.id`",
    ]


# --- SQL analysis, directly -------------------------------------------------------------------


def test_backend_schema_is_shipped_with_the_package() -> None:
    schema = backend_schema()
    assert schema["webhook_events"] >= {"id", "status", "created_at", "retry_count"}
    assert "pgcrypto" not in schema
    assert len(schema) == 9


def test_tables_of_reads_create_table_statements_only() -> None:
    tables = tables_of("CREATE TABLE a (x int, y text, PRIMARY KEY (x)); CREATE INDEX i ON a (y);")
    assert tables == {"a": frozenset({"x", "y"})}


@pytest.mark.parametrize(
    ("sql", "columns"),
    [
        (
            "SELECT id, status AS state, count(*), now()::date FROM orders GROUP BY id",
            {"id", "state", "count", "now"},
        ),
        ("SELECT * FROM orders", None),
        ("SELECT o.* FROM orders o", None),
        ("SELECT o.id FROM orders o UNION SELECT id FROM users", {"id"}),
        ("SELECT 1 + 1", None),
    ],
)
def test_output_columns_are_known_only_when_postgres_names_them_plainly(
    sql: str, columns: set[str] | None
) -> None:
    analysis = analyse(PostgresCall(sql=sql), writes=False)
    assert analysis.findings == []
    assert analysis.columns == (frozenset(columns) if columns is not None else None)


@pytest.mark.parametrize(
    "sql",
    [
        "WITH recent AS (SELECT id FROM webhook_events) SELECT r.id, r.anything FROM recent r",
        "SELECT s.x FROM (SELECT 1 AS x) s",
        "SELECT g FROM generate_series(1, 3) g",
        "SELECT pid, anything FROM pg_stat_activity",
        "SELECT o.id FROM orders o WHERE EXISTS (SELECT 1 FROM order_items WHERE order_id = o.id)",
        "SELECT id FROM orders WHERE total_kobo > (SELECT avg(total_kobo) FROM orders) ORDER BY id",
        "SELECT count(*) AS n FROM sessions ORDER BY n",
        "SELECT ip, count(*) FROM audit_logs GROUP BY 1 HAVING count(*) > 3",
        "INSERT INTO audit_logs (action, metadata) VALUES ('x', '{}') "
        "ON CONFLICT (id) DO UPDATE SET action = excluded.action",
    ],
)
def test_schema_check_stays_quiet_on_what_it_cannot_be_sure_of(sql: str) -> None:
    writes = sql.startswith("INSERT")
    analysis = analyse(PostgresCall(sql=sql, max_rows=1), writes=writes)
    assert analysis.findings == []


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT " + "+".join(["1"] * 30000), "sql is 60006 characters, more than the 10000"),
        ("SELECT " + "+".join(["1"] * 4000), "sql nests too deeply to check"),
    ],
)
def test_sql_too_long_or_too_deep_to_check_is_a_finding_not_a_crash(sql: str, message: str) -> None:
    analysis = analyse(PostgresCall(sql=sql), writes=False)
    assert len(analysis.findings) == 1
    assert message in analysis.findings[0].message
