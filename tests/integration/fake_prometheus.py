"""A fake Prometheus for the tests: series held by the exact PromQL a runbook step sends.

Used in-process through respx (``walkthrough_http``) and over loopback by the console tests
(``prometheus_series_route`` with ``agape_ops.demo.standins.serve``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agape_ops.demo.standins import Answer, Route, Seen
from agape_ops.runbooks.loader import load_runbook_file
from agape_ops.runbooks.timing import duration_seconds

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"


@dataclass(frozen=True)
class Series:
    """One series a fake Prometheus holds: its labels and its values over time, oldest first.

    An instant query answers the last value; a range query spreads the values evenly over the
    points of the range asked for. Values are strings, as Prometheus sends them ("NaN" too).
    """

    labels: dict[str, str]
    values: tuple[str, ...]


def promql(runbook_id: str, step_id: str) -> str:
    """Return the PromQL of a runbook's prometheus step, exactly as the adapter sends it."""
    runbook, _ = load_runbook_file(RUNBOOKS / f"{runbook_id}.yaml")
    step = runbook.step(step_id)
    assert step is not None, f"{runbook_id} has no step {step_id}"
    assert step.prometheus is not None, f"{runbook_id}:{step_id} is not a prometheus step"
    return step.prometheus.query


def prometheus_answer(
    series: dict[str, list[Series]], path: str, query: dict[str, list[str]]
) -> Answer:
    """Answer ``/api/v1/query`` and ``/api/v1/query_range`` as the backend README documents.

    ``series`` maps a PromQL query, exactly as a runbook writes it, to what it answers; any
    other query matches nothing (an empty result). A query with unbalanced parentheses is a
    400 ``bad_data``, as Prometheus answers it.
    """
    promql = query.get("query", [""])[0]
    if promql.count("(") != promql.count(")"):
        return Answer(
            400,
            {"status": "error", "errorType": "bad_data", "error": "1:1: parse error: unclosed"},
        )
    found = series.get(promql, [])
    if path == "/api/v1/query":
        result: list[dict[str, Any]] = [
            {"metric": s.labels, "value": [1_722_500_000.0, s.values[-1]]} for s in found
        ]
        return Answer(
            200, {"status": "success", "data": {"resultType": "vector", "result": result}}
        )
    if path == "/api/v1/query_range":
        start, end = float(query["start"][0]), float(query["end"][0])
        step = duration_seconds(query["step"][0])
        count = int((end - start) // step) + 1
        result = [
            {
                "metric": s.labels,
                "values": [
                    [start + i * step, s.values[i * len(s.values) // count]] for i in range(count)
                ],
            }
            for s in found
        ]
        return Answer(
            200, {"status": "success", "data": {"resultType": "matrix", "result": result}}
        )
    return Answer(404, {"status": "error", "errorType": "not_found", "error": "404 page not found"})


def prometheus_series_route(series: dict[str, list[Series]]) -> Route:
    """Answer as the Prometheus server behind Alertmanager does, holding ``series``."""

    def route(seen: Seen) -> Answer:
        return prometheus_answer(series, seen.path, seen.query)

    return route
