"""The result fields each kind of step produces: the contract between adapters and runbooks.

``when:`` and ``finding:`` read these names. The linter uses this table to reject a condition
that reads a field the step can never produce; adapters must produce exactly these (a test
holds them to it). Postgres reads produce their SQL's output columns, found by the linter.
"""

from __future__ import annotations

import re

#: Names every result offers (see ``StepResult.context``).
COMMON = frozenset(
    {"rows", "row_count", "columns", "first", "values", "text", "summary", "truncated"}
)

#: The columns of the Redis adapter's tables, in the order it shows them.
REDIS_INFO_COLUMNS = (
    "used_memory",
    "used_memory_human",
    "maxmemory",
    "memory_ratio",
    "connected_clients",
    "blocked_clients",
    "redis_version",
)
REDIS_QUEUE_COLUMNS = (
    "queue",
    "waiting",
    "active",
    "prioritized",
    "delayed",
    "failed",
    "completed",
    "paused",
    "backlog",
    "oldest_waiting_age_s",
    "version",
    "exists",  # False: no key of the queue in Redis (wrong prefix or name)
)
REDIS_FAILURE_COLUMNS = ("queue", "job_id", "name", "failed_reason", "finished_at", "attempts")

#: Fields by (step kind, action or command). Row columns are listed with values: both are
#: readable at the top level of a condition (the first row's columns and every value).
FIELDS: dict[tuple[str, str], frozenset[str]] = {
    # postgres reads: their SQL's columns (found by the linter), and each column's type
    ("postgres", "read"): frozenset({"column_types"}),
    # postgres writes: the preview's rows, and how many rows changed
    ("postgres", "write"): frozenset({"rows_changed", "preview_count"}),
    ("redis", "ping"): frozenset({"reachable", "latency_ms"}),
    ("redis", "info"): frozenset(REDIS_INFO_COLUMNS),
    ("redis", "queue_stats"): frozenset(
        # one row per queue, and values: queues ({name: {waiting, active, ..., backlog}}) and
        # the totals
        {*REDIS_QUEUE_COLUMNS, "queues", "total_backlog", "max_backlog"}
    ),
    ("redis", "queue_failures"): frozenset({*REDIS_FAILURE_COLUMNS, "failure_count"}),
    ("redis", "discover_queues"): frozenset({"queue", "version", "paused", "queue_names"}),
    ("paystack", "verify"): frozenset(
        {
            "reference",
            "status",
            "known_status",
            "paid",
            "amount",
            "amount_kobo",
            "currency",
            "gateway_response",
            "paid_at",
            "channel",
        }
    ),
    ("paystack", "verify_many"): frozenset(
        {
            "reference",
            "status",
            "paid",
            "amount",
            "amount_kobo",
            "checked",
            "paid_count",
            "paid_references",
            "not_found",
        }
    ),
    ("paystack", "list_transactions"): frozenset(
        {
            "reference",
            "status",
            "amount",
            "amount_kobo",
            "currency",
            "created_at",
            "gateway_response",
            "total",
        }
    ),
    ("paystack", "status_page"): frozenset(
        {
            "indicator",
            "description",
            "incidents",
            "incident_count",
            "name",
            "impact",
            "status",
            "started_at",
            "shortlink",
        }
    ),
    ("admin_api", "reprocess_webhook"): frozenset({"status", "webhook_id", "http_status"}),
    ("admin_api", "queue_stats"): frozenset(
        {
            "queue",
            "waiting",
            "active",
            "delayed",
            "failed",
            "completed",
            "paused",
            "queues",
            "total_waiting",
            "http_status",
        }
    ),
    ("admin_api", "health"): frozenset({"status", "checks", "healthy", "http_status", "failing"}),
    ("admin_api", "call"): frozenset({"http_status", "body"}),
    # prometheus: one row per series, its labels as columns (``__name__`` as ``metric``);
    # ``value`` is the answer's one number (a scalar, or the only series), None when there is
    # none or it is NaN. The labels a query names (by/without/on/ignoring and matchers, plus
    # job and instance) are readable too; the linter adds them (``prometheus_labels``).
    ("prometheus", "query"): frozenset({"result_type", "series", "value", "metric", "warnings"}),
    # a range query: per series (and, for a single series, as values) its first and last
    # value, min, max, change (the last less the first), trend (rising, falling, steady) and
    # how many points
    ("prometheus", "range"): frozenset(
        {
            "result_type",
            "series",
            "value",
            "metric",
            "warnings",
            "first_value",
            "last_value",
            "min",
            "max",
            "change",
            "trend",
            "points",
        }
    ),
    ("http", "check"): frozenset({"status_code", "latency_ms", "ok", "field", "url"}),
    ("shell", "run"): frozenset({"exit_code", "stdout", "stderr"}),
    ("manual", "items"): frozenset(),
}


#: Labels every scraped series carries (Prometheus adds them to each target's samples).
TARGET_LABELS = frozenset({"job", "instance"})
_LABEL_LISTS = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", re.IGNORECASE
)
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")


def prometheus_labels(query: str) -> frozenset[str]:
    """Return the label names a PromQL query names: its grouping clauses and matchers."""
    names = {
        name.strip()
        for listed in _LABEL_LISTS.findall(query)
        for name in listed.split(",")
        if name.strip()
    }
    names.update(_MATCHER.findall(query))
    names.discard("__name__")
    return frozenset(names) | TARGET_LABELS


def action_of(kind: str, call: object) -> str:
    """Return the FIELDS key's second part for a step's call."""
    for attribute in ("action", "command"):
        value = getattr(call, attribute, None)
        if isinstance(value, str):
            return value
    return {"http": "check", "shell": "run", "manual": "items"}.get(kind, "")
