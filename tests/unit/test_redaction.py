"""The redactor: configured secrets and secret-shaped strings never survive it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from agape_ops.adapters.redacting import RedactingAdapter
from agape_ops.engine.ports import AdapterRequest, Probe
from agape_ops.engine.results import StepResult
from agape_ops.errors import (
    AdapterResponseError,
    AgapeError,
    InputError,
    Problem,
    RunbookValidationError,
)
from agape_ops.redaction import MASK, MAX_LEARNED, RedactingFilter, Redactor
from agape_ops.runbooks.model import HttpCall, Step

KEY = "sk_live_0123456789abcdef0123456789abcdef"
TOKEN = "adm-token-Zq81x"


def test_configured_secrets_are_replaced_longest_first() -> None:
    redactor = Redactor(["abcd", "abcdefgh"])
    assert redactor.text("x abcdefgh y abcd") == f"x {MASK} y {MASK}"


def test_secrets_shorter_than_four_characters_are_ignored() -> None:
    redactor = Redactor(["a", "db", "", "xyz"])
    assert redactor.text("a db xyz data") == "a db xyz data"


def test_url_encoded_form_of_a_secret_is_replaced_too() -> None:
    redactor = Redactor(["p@ss/word"])
    assert redactor.text("p%40ss%2Fword and p@ss/word") == f"{MASK} and {MASK}"


def test_secrets_added_later_are_replaced_too_in_every_form() -> None:
    redactor = Redactor([TOKEN])
    redactor.add(['tok"en/42'])
    text = redactor.text('a tok"en/42 b tok%22en%2F42 c {"t": "tok\\"en/42"} ' + TOKEN)
    assert text == f'a {MASK} b {MASK} c {{"t": "{MASK}"}} {MASK}'


def test_only_the_most_recently_added_secrets_are_kept() -> None:
    redactor = Redactor([])
    redactor.add(["first-secret"])
    redactor.add(f"secret-{n:05}" for n in range(MAX_LEARNED))
    assert redactor.text("first-secret secret-00000") == f"first-secret {MASK}"
    redactor.add(["first-secret"])
    assert redactor.text("first-secret") == MASK


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgresql://agape:s3cret@db.internal:5432/agape",
            f"postgresql://agape:{MASK}@db.internal:5432/agape",
        ),
        ("redis://:hunter22@cache:6379/0", f"redis://:{MASK}@cache:6379/0"),
        ("Authorization: Bearer eyJhbGciOi.J9x1", f"Authorization: Bearer {MASK}"),
        ("key sk_test_abc123XYZ used", f"key {MASK} used"),
        ("slack xoxb-1234-5678-abcdEFGH ok", f"slack {MASK} ok"),
        ("slack xoxp-99-88-aa and xapp-1-A0-77-ff", f"slack {MASK} and {MASK}"),
    ],
)
def test_secret_shapes_are_replaced_without_configuration(text: str, expected: str) -> None:
    assert Redactor([]).text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "https://api.paystack.co:443/transaction/verify/REF-1",
        "send a Bearer token in the header",
        "Authorization: Bearer $PAYSTACK_SECRET_KEY",
        "pk_live_publickeyisfine",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor([]).text(text) == text


def test_redaction_is_idempotent() -> None:
    redactor = Redactor([KEY])
    once = redactor.text(f"postgresql://u:pw12@h/db Bearer {KEY}")
    assert redactor.text(once) == once


def test_value_redacts_deep_inside_dicts_and_lists() -> None:
    redactor = Redactor([TOKEN])
    value: Any = {"a": [TOKEN, {"b": f"x {TOKEN}"}], TOKEN: 3, "n": 5, "none": None}
    assert redactor.value(value) == {"a": [MASK, {"b": f"x {MASK}"}], MASK: 3, "n": 5, "none": None}


def test_result_redacts_summary_rows_values_and_text() -> None:
    redactor = Redactor([TOKEN])
    result = StepResult(
        summary=f"said {TOKEN}",
        columns=["c"],
        rows=[{"c": TOKEN}],
        total_rows=1,
        values={"body": {"echo": TOKEN}},
        text=TOKEN,
        duration_ms=7,
    )
    clean = redactor.result(result)
    assert TOKEN not in clean.model_dump_json()
    assert clean.duration_ms == 7
    assert clean.rows == [{"c": MASK}]


def test_exception_keeps_type_and_attributes_with_message_redacted() -> None:
    redactor = Redactor([TOKEN])
    error = AdapterResponseError(
        f"echoed {TOKEN}", adapter="admin_api", step_id="s1", status_code=500
    )
    clean = redactor.exception(error)
    assert type(clean) is AdapterResponseError
    assert str(clean) == f"echoed {MASK}"
    assert clean.args == (f"echoed {MASK}",)
    assert (clean.adapter, clean.step_id, clean.status_code) == ("admin_api", "s1", 500)
    assert str(error) == f"echoed {TOKEN}"  # the original is not changed


def test_exception_without_secrets_is_returned_unchanged() -> None:
    error = InputError("bad reference", input_name="reference")
    assert Redactor([TOKEN]).exception(error) is error


def test_exception_whose_init_takes_other_arguments_is_still_redacted() -> None:
    error = RunbookValidationError([Problem("r.yaml", 1, 2, f"leaks {TOKEN}")], path="r.yaml")
    clean = Redactor([TOKEN]).exception(error)
    assert isinstance(clean, RunbookValidationError)
    assert TOKEN not in str(clean)
    assert clean.path == "r.yaml"


class _Leaky:
    """An adapter that puts the token everywhere it can."""

    name = "leaky"

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    async def execute(self, request: AdapterRequest) -> StepResult:
        if self.fail:
            raise AdapterResponseError(f"server said Bearer {TOKEN}", adapter="leaky")
        return StepResult(summary=f"ok {TOKEN}", values={"token": TOKEN})

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        return StepResult(summary=f"would use {TOKEN}")

    def describe(self, request: AdapterRequest) -> str:
        return f"GET https://u:{TOKEN}@host/"

    async def probe(self) -> Probe:
        return Probe("leaky", ok=False, detail=f"refused {TOKEN}")


def _request() -> AdapterRequest:
    call = HttpCall(url="https://example.invalid/")
    step = Step(id="s", title="S", http=call)
    return AdapterRequest(run_id="r", step=step, call=call, idempotency_key="k")


async def test_redacting_adapter_redacts_result_preview_describe_and_probe() -> None:
    adapter = RedactingAdapter(_Leaky(fail=False), Redactor([TOKEN]))
    result = await adapter.execute(_request())
    preview = await adapter.preview(_request())
    probe = await adapter.probe()
    assert adapter.name == "leaky"
    assert result.values == {"token": MASK}
    assert preview is not None
    assert TOKEN not in preview.summary
    assert TOKEN not in adapter.describe(_request())
    assert probe.detail == f"refused {MASK}"


async def test_redacting_adapter_reraises_redacted_error_from_the_original() -> None:
    adapter = RedactingAdapter(_Leaky(fail=True), Redactor([TOKEN]))
    with pytest.raises(AdapterResponseError) as caught:
        await adapter.execute(_request())
    assert TOKEN not in str(caught.value)
    assert isinstance(caught.value.__cause__, AgapeError)


def test_filter_redacts_message_args_extra_and_exception_text() -> None:
    redactor = Redactor([TOKEN])
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record) + " extra=" + str(record.__dict__.get("who")))

    handler = Collect()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(redactor))
    logger = logging.getLogger("test_redaction.filter")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("calling with %s", TOKEN, extra={"who": TOKEN})
        try:
            raise ValueError(f"boom {TOKEN}")
        except ValueError:
            logger.exception("failed at %s", f"Bearer {TOKEN}")
        logger.error("bad format %s %s", TOKEN)  # noqa: PLE1206 - a mismatch must not break logging
    finally:
        logger.removeHandler(handler)
    assert len(records) == 3
    assert all(TOKEN not in line for line in records)
    assert "boom [REDACTED]" in records[1]
    assert "Traceback" in records[1]
