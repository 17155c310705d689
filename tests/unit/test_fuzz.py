"""Property-based fuzzing (hypothesis) of everything that reads outside input; 0 crashes.

Four targets: the alert normaliser, the `/ops` parser, input value checking and the runbook
loader with its linter. Each generated case must end in an answer or the error that target
is documented to raise; anything else is counted as an unexpected error. ``make test`` runs a
small profile (``FUZZ_EXAMPLES``, default 100 per target); ``make fuzz`` runs 10,000 per target
and prints, for each, the cases tried and the unexpected errors found.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_random_inputs import FIXTURES, KEYS, RUNBOOKS, WORDS

from agape_ops.alerts.fingerprint import fingerprint
from agape_ops.alerts.model import Alert
from agape_ops.alerts.normalise import from_json, from_slack_event, from_text
from agape_ops.engine.context import validate_input
from agape_ops.errors import InputError
from agape_ops.runbooks.lint import lint_paths
from agape_ops.runbooks.model import Input
from agape_ops.surfaces.ops_command import SUBCOMMANDS, OpsCommand, OpsUsage, parse
from agape_ops.values import check_text, text_problem

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))

#: Every code point, surrogates and controls included (hypothesis leaves surrogates out).
ANY_CHARACTER = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
#: Characters that stress number and text handling: digits of other scripts, NUL, escapes.
TRICKY = st.sampled_from(
    ["²", "①", "٣", "\U0001d7d7", "\x00", "\ud800", "\x1b", "…", "=", '"', "'"]
)
ANY_TEXT = st.lists(
    st.one_of(ANY_CHARACTER, TRICKY, st.sampled_from(["\x1b[2J", "9" * 4301, "\r\n"])),
    max_size=40,
).map("".join)


# --- the alert normaliser ---------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.sampled_from(WORDS),
    st.sampled_from(KEYS),
    ANY_TEXT,
)
PAYLOADS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    ),
    max_leaves=30,
)
EVENTS = st.builds(
    lambda body, kind, inner: {**body, "type": kind, "event": inner},
    st.dictionaries(st.sampled_from(KEYS), PAYLOADS, max_size=6),
    st.sampled_from(["message", "event_callback"]),
    PAYLOADS,
)
#: Deep nesting as text, the way it arrives: far past any limit.
DEEP_JSON = st.integers(1, 12_000).map(lambda n: '{"title": ' + "[" * n + "]" * n + "}")


def _safe_json(value: Any) -> str:
    return json.dumps(value, default=str)


ALERT_INPUTS = st.one_of(
    PAYLOADS, EVENTS, PAYLOADS.map(_safe_json), EVENTS.map(_safe_json), DEEP_JSON, ANY_TEXT
)


def _texts(value: Any) -> list[str]:
    """Return every string in a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (k, *_texts(v))]
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    return []


def check_alert(raw: Any) -> None:
    """Every input gives an Alert or None, and an Alert is storable as it is."""
    alerts = [from_json(raw)]
    if isinstance(raw, dict):
        alerts.append(from_slack_event(raw))
    if isinstance(raw, str):
        alerts.append(from_text(raw))
    for alert in alerts:
        if alert is None:
            continue
        assert isinstance(alert, Alert)
        assert len(fingerprint(alert)) == 16
        stored = json.loads(alert.model_dump_json())
        for text in _texts(stored):
            assert text_problem(text, limit=10**6) is None, text


# --- the /ops parser --------------------------------------------------------------------------

OPS_LINES = st.one_of(
    ANY_TEXT,
    st.builds(
        lambda name, rest: f"{name} {rest}",
        st.sampled_from([*SUBCOMMANDS, "/ops", "INC-1"]),
        st.text(st.one_of(TRICKY, st.sampled_from(list("0123456789 ,=-INCabc_")), ANY_CHARACTER)),
    ),
    st.integers(1, 6000).map(lambda n: "done 1 " + "7" * n),
)


def check_ops(text: str) -> None:
    """Every line parses to a command or a usage message; numbers are sane, text is clean."""
    parsed = parse(text)
    assert isinstance(parsed, OpsCommand | OpsUsage)
    if isinstance(parsed, OpsCommand):
        assert all(1 <= item <= 9999 for item in parsed.items)
        for value in (parsed.target, parsed.run_id, parsed.text, *parsed.inputs.values()):
            assert value is None or text_problem(value, limit=10**6) is None


# --- input value checking ---------------------------------------------------------------------

SPECS = st.builds(
    lambda pattern, secret: Input(description="A value.", pattern=pattern, secret=secret),
    st.sampled_from([r"^.+$", r"^[A-Za-z0-9.=-]+$", r"^\d+$", r"^[0-9a-f-]{36}$", r"^\S+@\S+$"]),
    st.booleans(),
)
VALUES = st.one_of(ANY_TEXT, st.text(ANY_CHARACTER, min_size=900, max_size=1200))


def check_input(case: tuple[Input, str]) -> None:
    """A value is refused with InputError or accepted as valid, storable Unicode."""
    spec, value = case
    try:
        accepted = validate_input("value", spec, check_text(value, name="value"))
    except InputError as exc:
        refused: InputError | None = exc
    else:
        refused = None
        accepted.encode("utf-8")  # a surrogate would raise here
        assert "\x00" not in accepted
    assert refused is None or refused.input_name == "value"


# --- the runbook loader and linter ------------------------------------------------------------

SOURCES = [path.read_text(encoding="utf-8") for path in (*RUNBOOKS, *FIXTURES)]
YAML_PIECES = ["\n", "  ", ": ", "- ", "[", "]", "{", "}", "&a ", "*a", "!!int ", "!tag ", "|"]
HOSTILE_PIECES = ["{{ 9 ** (9 ** 9) }}", "{{ 'a' * 10 ** 9 }}", "{% for i in range(99) %}"]
HOSTILE_PIECES += ["ts_rewrite(", "sh", "-c", "{{ inputs.p }}", "../", "%(x)s", "\x00", "\ud800"]
PIECES = st.sampled_from([*YAML_PIECES, *HOSTILE_PIECES, "'", '"', "\t", "---", "<<: *a"])
EDITS = st.lists(
    st.tuples(st.floats(0, 1), st.one_of(PIECES, ANY_TEXT), st.integers(0, 40)),
    min_size=1,
    max_size=6,
)


def _edited(source: str, edits: list[tuple[float, str, int]]) -> str:
    text = source
    for where, piece, cut in edits:
        at = int(where * len(text))
        text = text[:at] + piece + text[at + cut :] if cut % 3 else text[:at] + piece + text[at:]
    return text


RUNBOOK_TEXTS = st.builds(_edited, st.sampled_from(SOURCES), EDITS)


def check_runbook(text: str, folder: Path) -> None:
    """Any text loads and lints to located problems, never an exception."""
    path = folder / "fuzzed.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    problems = lint_paths([path])
    assert all(problem.line >= 1 for problem in problems)


# --- the runner -------------------------------------------------------------------------------


@dataclass
class Report:
    """What one target's run found."""

    cases: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]


def run(target: Target, examples: int) -> Report:
    """Try ``examples`` generated cases on a target; count each unexpected error, never stop."""
    report = Report()

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy)
    def case(value: Any) -> None:
        report.cases += 1
        try:
            target.check(value)
        except Exception:  # counting every unexpected error is the point
            if len(report.errors) < 3:
                report.errors.append(f"{value!r:.300}\n{traceback.format_exc(limit=-3)}")
            else:
                report.errors.append("")

    case()
    return report


def targets(folder: Path) -> list[Target]:
    return [
        Target("alert normaliser", ALERT_INPUTS, check_alert),
        Target("/ops parser", OPS_LINES, check_ops),
        Target("input values", st.tuples(SPECS, VALUES), check_input),
        Target("runbook loader", RUNBOOK_TEXTS, lambda text: check_runbook(text, folder)),
    ]


@pytest.mark.parametrize("index", range(4), ids=["alerts", "ops", "inputs", "loader"])
def test_generated_input_never_crashes_a_reader(index: int, tmp_path: Path) -> None:
    target = targets(tmp_path)[index]
    report = run(target, EXAMPLES)
    print(  # noqa: T201 - `make fuzz` reports these figures
        f"\nfuzz {target.name}: {report.cases} cases, {len(report.errors)} unexpected errors"
    )
    assert report.cases >= EXAMPLES * 0.9
    assert not report.errors, "\n".join(e for e in report.errors if e)
