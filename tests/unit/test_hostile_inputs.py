"""Odd input is refused or cleaned with a reason, never a crash: numbers, text, alerts.

What crashed a command before: ``²`` or ``①`` as a step or item number, a 4,301-digit number
(past Python's int() limit), an alert nested 10,000 deep, values nested 400 deep, a lone
surrogate or a NUL in text.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agape_ops.alerts.limits import MAX_DEPTH, json_problem, structure_problem
from agape_ops.alerts.model import Alert
from agape_ops.alerts.normalise import from_json, from_slack_event, from_text
from agape_ops.errors import InputError
from agape_ops.surfaces.ops_command import OpsCommand, OpsUsage, number, parse
from agape_ops.values import MAX_VALUE_CHARS, check_text, clean_text, text_problem

HUGE = "9" * 4301


@pytest.mark.parametrize(
    "text",
    [
        "run ²",
        "run ①",
        "run ٣",
        f"run {HUGE}",
        "done 3 ²",
        "done 3 1 ① 2",
        f"done 3 {HUGE}",
        f"done {HUGE} 1",
        f"skip {HUGE} why",
        f"ack INC-{HUGE[:3000]}",
        f"use INC-{HUGE[:3000]}",
        "note \x00",
        "input token=\ud800",
        "note " + "x" * 5000,
    ],
)
def test_odd_numbers_and_text_are_a_usage_message_never_a_crash(text: str) -> None:
    parsed = parse(text)
    assert isinstance(parsed, OpsUsage)
    assert len(parsed.message) < 300


def test_ascii_numbers_still_work() -> None:
    assert parse("done 3 1, 2 2") == OpsCommand("done", target="3", items=(1, 2))
    assert parse("ack inc-12") == OpsCommand("ack", run_id="INC-12")
    assert [number(word) for word in ("7", "0", "²", "①", "12345", HUGE)] == [7, None] + [None] * 4


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a\x00b", "a NUL character at character 2"),
        ("ok\ud800", "an unpaired surrogate"),
        ("\x1b[2J", "a control character (U+001B)"),
        ("x" * (MAX_VALUE_CHARS + 1), f"at most {MAX_VALUE_CHARS:,} are accepted"),
    ],
)
def test_a_value_that_cannot_be_stored_is_refused_with_the_reason(text: str, words: str) -> None:
    problem = text_problem(text)
    assert problem is not None
    assert words in problem
    with pytest.raises(InputError, match="`reference`") as caught:
        check_text(text, name="reference")
    assert caught.value.input_name == "reference"


def test_ordinary_values_pass_and_alert_text_is_cleaned_the_same_way_everywhere() -> None:
    assert check_text("T-123 naïve\tok\n") == "T-123 naïve\tok\n"
    assert clean_text("a\x00b\ud800c\x1b[0m") == "ab\ufffdc[0m"
    assert clean_text("x" * 50, limit=10) == "x" * 9 + "…"


def nested(depth: int, leaf: Any) -> Any:
    """Build a value nested ``depth`` deep without recursion."""
    for _ in range(depth):
        leaf = {"a": [leaf]}
    return leaf


def test_an_alert_nested_ten_thousand_deep_is_turned_away_before_parsing() -> None:
    text = '{"title": "x", "labels": ' + "[" * 10_000 + "]" * 10_000 + "}"
    assert json_problem(text) == f"the alert nests deeper than {MAX_DEPTH} levels"
    assert from_json(text) is None
    deep = {"title": "x", "labels": nested(5_000, 1)}
    assert structure_problem(deep) is not None
    assert from_json(deep) is None
    event = {"type": "message", "text": "[FIRING:1] Deep", "attachments": [nested(5_000, 1)]}
    assert from_slack_event(event) is None


def test_values_nested_four_hundred_deep_and_odd_text_are_kept_out_of_the_alert() -> None:
    payload = {
        "title": "Checkout\x00 errors \ud83d",
        "text": "rate 7%\x1b]0;pwned\x07",
        "labels": {"alertname": "HighErrorRate\x00", "nested": str(nested(3, 1))},
        "values": {"rate": 0.07, "deep": nested(10, 1), "nan": float("nan"), "ok": "yes"},
    }
    alert = from_json(json.dumps(payload))
    assert alert is not None
    assert alert.title == "Checkout errors \ufffd"
    assert "\x1b" not in alert.text
    assert "\x07" not in alert.text
    assert alert.alertname == "HighErrorRate"
    assert alert.values["rate"] == 0.07
    assert alert.values["ok"] == "yes"
    assert "deep" not in alert.values
    assert "nan" not in alert.values
    json.loads(alert.model_dump_json())  # storable as it is, on either store
    deep = Alert(title="x", values={"v": nested(400, 1), "big": 10**5000, "ok": 5})
    assert deep.values == {"ok": 5}
    assert from_text("rate 9" + "9" * 4400 + " and n=" + "7" * 4400) is not None
