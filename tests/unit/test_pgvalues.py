"""PostgreSQL values become JSON-safe values a person can read."""

from __future__ import annotations

import ipaddress
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from agape_ops.adapters.pgvalues import (
    MAX_TEXT,
    render_row,
    render_value,
    unique_columns,
)
from agape_ops.engine.results import duration_words


def test_uuid_becomes_its_text() -> None:
    value = uuid.UUID("2a425bf1-3217-4d30-8a07-11875fc04ba0")
    assert render_value(value) == "2a425bf1-3217-4d30-8a07-11875fc04ba0"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05+00:00"),
        (
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1))),
            "2026-01-02T03:04:05+01:00",
        ),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05"),
        (date(2026, 1, 2), "2026-01-02"),
        (time(3, 4, 5), "03:04:05"),
    ],
)
def test_dates_and_times_become_iso_8601(value: object, text: str) -> None:
    assert render_value(value) == text


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (timedelta(0), "0 ms"),
        (timedelta(milliseconds=340), "340 ms"),
        (timedelta(seconds=4.2), "4.2 s"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(minutes=5, seconds=3), "5 min 03 s"),
        (timedelta(hours=2, minutes=5), "2 h 05 min"),
        (timedelta(days=3, hours=4, minutes=59), "3 d 04 h"),
        (timedelta(minutes=-90), "-1 h 30 min"),
    ],
)
def test_intervals_become_words(value: timedelta, words: str) -> None:
    assert duration_words(value) == words
    assert render_value(value) == words


@pytest.mark.parametrize(
    ("value", "number"),
    [(Decimal("12.50"), 12.5), (Decimal("3"), 3), (Decimal("3.000"), 3), (Decimal("-0.07"), -0.07)],
)
def test_numerics_become_int_or_float(value: Decimal, number: float) -> None:
    rendered = render_value(value)
    assert rendered == number
    assert type(rendered) is type(number)


def test_non_finite_numbers_become_text_json_can_hold() -> None:
    assert render_value(Decimal("NaN")) == "NaN"
    assert render_value(float("inf")) == "inf"


def test_jsonb_stays_as_it_is() -> None:
    payload = {"event": "charge.success", "data": {"amount": 500000, "tags": ["a", None]}}
    assert render_value(payload) == payload
    assert render_value([1, {"a": True}]) == [1, {"a": True}]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (ipaddress.ip_address("41.58.12.9"), "41.58.12.9"),
        (ipaddress.ip_address("2001:db8::1"), "2001:db8::1"),
        (ipaddress.ip_network("10.0.0.0/8"), "10.0.0.0/8"),
        (ipaddress.ip_interface("192.168.1.5/24"), "192.168.1.5/24"),
    ],
)
def test_inet_and_cidr_become_text(value: object, text: str) -> None:
    assert render_value(value) == text


def test_bytes_become_their_size() -> None:
    assert render_value(b"\x00\x01\x02") == "<3 bytes>"
    assert render_value(memoryview(b"abcd")) == "<4 bytes>"


def test_none_bool_and_int_stay_as_they_are() -> None:
    assert render_value(None) is None
    assert render_value(True) is True
    assert render_value(False) is False
    assert render_value(42) == 42


def test_long_text_is_cut_with_an_ellipsis() -> None:
    text = "x" * (MAX_TEXT + 10)
    rendered = render_value(text)
    assert len(rendered) == MAX_TEXT
    assert rendered.endswith("…")
    assert render_value("short") == "short"


def test_arrays_render_each_element() -> None:
    ids = [uuid.UUID(int=1), uuid.UUID(int=2)]
    assert render_value(ids) == [str(ids[0]), str(ids[1])]


def test_a_rendered_row_is_json_serialisable() -> None:
    row = render_row(
        ["id", "at", "ip", "amount", "age", "payload"],
        [
            uuid.uuid4(),
            datetime.now(UTC),
            ipaddress.ip_address("10.1.2.3"),
            Decimal("1.5"),
            timedelta(seconds=1),
            {"k": "v"},
        ],
    )
    assert json.loads(json.dumps(row)) == row


def test_repeated_column_names_are_made_distinct() -> None:
    assert unique_columns(["id", "name", "id", "id"]) == ["id", "name", "id_2", "id_3"]


def test_renamed_columns_never_collide_with_a_column_of_that_name() -> None:
    assert unique_columns(["id", "id", "id_2"]) == ["id", "id_3", "id_2"]
    assert unique_columns(["id_2", "id", "id"]) == ["id_2", "id", "id_3"]
