"""What Paystack's answers mean: verify and list JSON turned into rows, figures and statements.

Pure functions, no I/O: the adapter (``paystack.py``) fetches, these translate. Only ``success``
means paid; a status Paystack adds later is shown as ``unknown (<raw>)``, never as failed.
Amounts arrive in kobo and are shown in naira (``amount``) with the kobo kept.
"""

from __future__ import annotations

import re
from typing import Any

from agape_ops.engine.results import StepResult, table
from agape_ops.errors import InputError
from agape_ops.runbooks.model import REFERENCE_PATTERN

#: The longest reference checked; Paystack issues far shorter ones, and a longer one is refused
#: before it can make an oversized request.
MAX_REFERENCE_CHARS = 200

#: Every documented ``data.status`` of a verify, with what it means for the money.
VERIFY_STATUSES: dict[str, str] = {
    "success": "paid",
    "failed": "not paid: the charge failed",
    "abandoned": "not paid: the customer left before paying",
    "ongoing": "not paid yet: the customer is still completing the payment",
    "pending": "not paid yet: awaiting confirmation",
    "processing": "not paid yet: still processing",
    "queued": "not paid yet: queued for processing",
    "reversed": "not paid: the payment was reversed",
}
UNKNOWN_MEANING = "not known to agape-ops: treat as not paid, check by hand"

VERIFY_MANY_COLUMNS = ["reference", "status", "paid", "amount", "amount_kobo"]
LIST_COLUMNS = [
    "reference",
    "status",
    "amount",
    "amount_kobo",
    "currency",
    "created_at",
    "gateway_response",
]


def is_reference(reference: str) -> bool:
    """Return whether ``reference`` could be a Paystack reference and names nothing else.

    Only the characters Paystack references contain, at most ``MAX_REFERENCE_CHARS`` of them,
    and never ``.`` or ``..`` alone, which would name another endpoint of the API.
    """
    return (
        len(reference) <= MAX_REFERENCE_CHARS
        and reference.strip(".") != ""
        and re.fullmatch(REFERENCE_PATTERN, reference) is not None
    )


def check_reference(reference: str) -> None:
    """Raise InputError for a reference Paystack cannot have issued, before any call."""
    if not is_reference(reference):
        shown = reference if len(reference) <= 60 else reference[:60] + "…"
        raise InputError(
            f"{shown!r} is not a Paystack reference: references are at most "
            f"{MAX_REFERENCE_CHARS} letters, digits, '-', '.' and '=' (and not dots alone)",
            input_name="reference",
        )


def status_name(raw: str) -> str:
    """Return a documented status as it is, any other as ``unknown (<raw>)``."""
    return raw if raw in VERIFY_STATUSES else f"unknown ({raw or 'empty'})"


def verify_result(data: dict[str, Any], reference: str) -> StepResult:
    """State one verified transaction: its status, whether it is paid, and how much."""
    raw = str(data.get("status") or "")
    status = status_name(raw)
    kobo = kobo_of(data.get("amount"))
    currency = str(data.get("currency") or "NGN")
    values: dict[str, Any] = {
        "reference": str(data.get("reference") or reference),
        "status": status,
        "known_status": raw in VERIFY_STATUSES,
        "paid": raw == "success",
        "amount": naira(kobo),
        "amount_kobo": kobo,
        "currency": currency,
        "gateway_response": text(data.get("gateway_response")),
        "paid_at": text(data.get("paid_at") or data.get("paidAt")),
        "channel": text(data.get("channel")),
    }
    meaning = VERIFY_STATUSES.get(raw, UNKNOWN_MEANING)
    parts = [f"Paystack reference {values['reference']}: {status} — {meaning}"]
    if kobo is not None:
        parts.append(f", {money(kobo, currency)}")
    if values["channel"]:
        parts.append(f" via {values['channel']}")
    if values["gateway_response"]:
        parts.append(f" (gateway: {values['gateway_response']})")
    return StepResult(summary="".join(parts), values=values)


def verify_row(data: dict[str, Any], reference: str) -> dict[str, Any]:
    """Return the verify_many row of one verified reference."""
    raw = str(data.get("status") or "")
    kobo = kobo_of(data.get("amount"))
    return {
        "reference": reference,
        "status": status_name(raw),
        "paid": raw == "success",
        "amount": naira(kobo),
        "amount_kobo": kobo,
    }


def unchecked_row(reference: str, status: str) -> dict[str, Any]:
    """Return the verify_many row of a reference with no transaction to show."""
    return {
        "reference": reference,
        "status": status,
        "paid": False,
        "amount": None,
        "amount_kobo": None,
    }


def verify_many_result(rows: list[dict[str, Any]]) -> StepResult:
    """Count the paid, the not found and the invalid among verified references."""
    paid = [r["reference"] for r in rows if r["paid"]]
    not_found = [r["reference"] for r in rows if r["status"] == "not_found"]
    invalid = [r["reference"] for r in rows if r["status"] == "invalid_reference"]
    summary = f"{len(paid)} of {len(rows)} references verify as paid on Paystack"
    if paid:
        summary += f": {', '.join(paid)}"
    if not_found:
        summary += f"; {len(not_found)} not found on Paystack"
    if invalid:
        summary += f"; {len(invalid)} not valid references (not checked)"
    return table(
        summary,
        VERIFY_MANY_COLUMNS,
        rows,
        values={
            "checked": len(rows),
            "paid_count": len(paid),
            "paid_references": paid,
            "not_found": not_found,
        },
    )


def transaction_row(item: dict[str, Any]) -> dict[str, Any]:
    """Return the row of one transaction of a list."""
    kobo = kobo_of(item.get("amount"))
    return {
        "reference": text(item.get("reference")),
        "status": text(item.get("status")),
        "amount": naira(kobo),
        "amount_kobo": kobo,
        "currency": text(item.get("currency")),
        "created_at": text(item.get("created_at") or item.get("createdAt")),
        "gateway_response": text(item.get("gateway_response")),
    }


def list_result(
    rows: list[dict[str, Any]],
    *,
    total: int | None,
    status: str | None,
    window_minutes: int,
    pages_read: int,
    page_count: int,
) -> StepResult:
    """State how many transactions the window holds, and whether every page was read."""
    count = total if total is not None else len(rows)
    kind = f"{status} " if status else ""
    summary = f"{count} {kind}Paystack transactions in the last {window_minutes} minutes"
    if pages_read < page_count:
        summary += f" (read the first {pages_read} of {page_count} pages: {len(rows)} listed)"
    return table(summary, LIST_COLUMNS, rows, total=max(count, len(rows)), values={"total": count})


def kobo_of(value: object) -> int | None:
    """Return an amount in kobo as an int, or None when it is not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def naira(kobo: int | None) -> float | None:
    """Return kobo as naira (the major unit of the currency)."""
    return None if kobo is None else round(kobo / 100, 2)


def money(kobo: int, currency: str) -> str:
    """Say an amount: ₦25,000.00, or GHS 25.00 for another currency."""
    amount = f"{kobo / 100:,.2f}"
    return f"₦{amount}" if currency == "NGN" else f"{currency} {amount}"


def whole(value: object) -> int | None:
    """Return ``value`` when it is an int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text(value: object) -> str | None:
    """Return ``value`` as text, None for null or empty."""
    return None if value is None or value == "" else str(value)
