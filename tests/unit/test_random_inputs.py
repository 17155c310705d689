"""Random inputs never break the pure parts: seeded, so every run tries the same thousands.

Alert normalisation answers an Alert or None for any JSON-shaped payload; the runbook loader
and linter answer RunbookError for any text; trigger matching picks the same runbook whatever
order the runbooks come in.
"""

from __future__ import annotations

import contextlib
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from agape_ops.alerts.fingerprint import fingerprint
from agape_ops.alerts.model import Alert
from agape_ops.alerts.normalise import from_json, from_slack_event
from agape_ops.errors import RunbookError
from agape_ops.runbooks.lint import lint_paths
from agape_ops.runbooks.loader import load_runbook_file
from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.triggers import match_alert

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted((ROOT / "runbooks").glob("*.yaml"))
FIXTURES = sorted((ROOT / "tests" / "fixtures").glob("*/*.yaml"))

#: Keys and words the parsers look for, so random payloads reach deep into them.
KEYS = [
    "type",
    "subtype",
    "text",
    "attachments",
    "blocks",
    "elements",
    "fields",
    "title",
    "value",
    "bot_id",
    "bot_profile",
    "name",
    "id",
    "user",
    "username",
    "ts",
    "thread_ts",
    "channel",
    "message",
    "previous_message",
    "event",
    "alerts",
    "status",
    "labels",
    "annotations",
    "commonLabels",
    "groupLabels",
    "commonAnnotations",
    "values",
    "generatorURL",
    "externalURL",
    "orgId",
    "color",
    "title_link",
    "fallback",
    "footer",
    "pretext",
    "url",
    "range",
    "action_id",
    "source",
    "link",
]
WORDS = [
    "message",
    "event_callback",
    "bot_message",
    "message_changed",
    "rich_text",
    "rich_text_section",
    "rich_text_list",
    "section",
    "context",
    "actions",
    "[FIRING:2] HighErrorRate api",
    "[RESOLVED] X",
    "Triggered: Foo on {service:api}",
    "Monitor is DOWN: agape-api ( http://x ) - Reason: HTTP 503",
    "error rate 7%",
    "Labels:\n - alertname = X",
    "Value: [ var='A' labels={} value=0.5 ]",
    "a=b c=1.5",
    "sentry.io/",
    "resolved",
    "",
]


def payload(rng: random.Random, depth: int = 0) -> Any:
    """Return a random JSON-shaped value built from the words the parsers read."""
    roll = rng.random()
    if depth > 5 or roll < 0.35:
        return rng.choice(
            [
                None,
                True,
                rng.randint(-(10**20), 10**20),
                rng.random() * 1e6,
                float("nan"),
                rng.choice(WORDS),
                rng.choice(KEYS),
                "".join(chr(rng.randrange(0x3000)) for _ in range(rng.randrange(12))),
            ]
        )
    if roll < 0.6:
        return [payload(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): payload(rng, depth + 1) for _ in range(rng.randrange(7))}


@pytest.mark.parametrize("seed", range(4))
def test_any_json_shaped_payload_gives_an_alert_or_none(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        raw = payload(rng)
        if isinstance(raw, dict) and rng.random() < 0.5:
            raw["type"] = rng.choice(["message", "event_callback"])
            raw.setdefault("event", payload(rng))
        outcomes = [from_json(raw)]
        if isinstance(raw, dict):
            outcomes.append(from_slack_event(raw))
        for alert in outcomes:
            assert alert is None or isinstance(alert, Alert)
            if alert is not None:
                assert len(fingerprint(alert)) == 16


def mangled(rng: random.Random, text: str) -> str:
    """Return ``text`` with a few random insertions, deletions and copied spans."""
    pieces = [
        "\n",
        "  ",
        ": ",
        "- ",
        "[",
        "]",
        "{",
        "}",
        "&a ",
        "*a",
        "!!int ",
        "!!bool ",
        "!tag ",
        "? ",
        "|",
        "'",
        '"',
        "{{",
        "}}",
        "%(x)s",
        "\t",
        "\x07",
        "---",
        "<<: *a",
    ]
    values = [n + 2 for n in range(len(text) - 1) if text[n : n + 2] == ": "]
    chars = list(text)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(chars) + 1)
        roll = rng.random()
        if roll < 0.2 and values:  # give a value a tag, an anchor or an alias
            at = min(rng.choice(values), len(chars))
            chars[at:at] = rng.choice(["!!int ", "!!bool ", "!!float ", "!tag ", "*a ", "&a "])
        elif roll < 0.4:
            chars[at:at] = rng.choice(pieces)
        elif roll < 0.7:
            del chars[at : at + rng.randint(1, 20)]
        else:
            start = rng.randrange(len(chars) + 1)
            chars[at:at] = chars[start : start + rng.randint(1, 40)]
    return "".join(chars)


@pytest.mark.parametrize("seed", range(3))
def test_any_mangled_runbook_gives_runbook_errors_and_nothing_else(
    seed: int, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    sources = [path.read_text(encoding="utf-8") for path in (*RUNBOOKS, *FIXTURES)]
    for n in range(100):
        path = tmp_path / f"{rng.choice(['queue-backlog', 'minimal', 'x'])}-{n}.yaml"
        path.write_text(mangled(rng, rng.choice(sources)), encoding="utf-8")
        with contextlib.suppress(RunbookError):
            load_runbook_file(path)
        assert all(problem.line >= 1 for problem in lint_paths([path]))


@cache
def catalog() -> tuple[Runbook, ...]:
    return tuple(load_runbook_file(path)[0] for path in RUNBOOKS)


def test_the_runbook_chosen_does_not_depend_on_the_order_of_runbooks() -> None:
    rng = random.Random(7)
    words = " ".join(trigger.text or "" for rb in catalog() for trigger in rb.triggers)
    vocabulary = [*words.replace("(?i)", " ").split(), "HighErrorRate", "PostgresDown", "stuck"]
    books = list(catalog())
    for _ in range(300):
        names = rng.choice([{}, {"alertname": rng.choice(["HighErrorRate", "NegativeStock"])}])
        alert = Alert(
            title=" ".join(rng.choices(vocabulary, k=rng.randint(1, 8))),
            text=" ".join(rng.choices(vocabulary, k=rng.randint(0, 20))),
            labels=names,
        )
        first = match_alert(alert, books)
        rng.shuffle(books)
        again = match_alert(alert, books)
        assert (first is None) == (again is None)
        if first is not None and again is not None:
            assert (first.runbook.id, first.score, first.reason) == (
                again.runbook.id,
                again.score,
                again.reason,
            )
