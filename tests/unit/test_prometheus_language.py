"""The `prometheus:` step kind: what a runbook may say, what the linter lets it read, the schema."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from agape_ops.cli.runbook_commands import schema
from agape_ops.runbooks.fields import FIELDS, action_of, prometheus_labels
from agape_ops.runbooks.model import PrometheusCall, Step
from agape_ops.runbooks.timing import PrometheusRange, duration_seconds


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172_800), ("1w", 604_800), ("250ms", 0.25)],
)
def test_durations_are_read_as_prometheus_reads_them(duration: str, seconds: float) -> None:
    assert duration_seconds(duration) == seconds


def test_an_instant_query_is_action_query_and_a_range_query_action_range() -> None:
    instant = PrometheusCall(query="up")
    ranged = PrometheusCall.model_validate({"query": "up", "range": {"start": "1h", "step": "5m"}})
    assert (instant.action, ranged.action) == ("query", "range")
    assert action_of("prometheus", instant) == "query"
    assert action_of("prometheus", ranged) == "range"
    assert ranged.range == PrometheusRange(start="1h", step="5m")
    assert PrometheusRange() == PrometheusRange(start="30m", step="1m")


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ({"start": "30 minutes"}, "'30 minutes' is not a Prometheus duration"),
        ({"step": "1"}, "'1' is not a Prometheus duration"),
        ({"start": "0s"}, "longer than zero"),
        ({"start": "8d", "step": "1h"}, "at most 7d"),
        ({"start": "7d", "step": "30s"}, "7d in steps of 30s is more than 11000 points"),
    ],
)
def test_a_range_prometheus_would_refuse_is_refused_saying_why(
    window: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        PrometheusRange(**window)


def test_a_query_is_required_and_unknown_keys_are_errors() -> None:
    with pytest.raises(ValidationError, match="query"):
        PrometheusCall(query="")
    with pytest.raises(ValidationError, match="Extra inputs"):
        PrometheusCall.model_validate({"query": "up", "time": "now"})


def test_a_step_may_be_a_prometheus_step_and_is_of_kind_prometheus() -> None:
    step = Step(id="up", title="Instances up", prometheus=PrometheusCall(query="up"))
    assert step.kind == "prometheus"
    assert step.call == PrometheusCall(query="up")


def test_the_labels_a_query_names_are_readable_with_job_and_instance() -> None:
    query = (
        'sum by (route, status) (rate(http_requests_total{service="agape-backend",'
        'status=~"5.."}[5m])) / ignoring(status) group_left sum by (route) (rate(x[5m]))'
    )
    assert prometheus_labels(query) == {"route", "status", "service", "job", "instance"}
    assert prometheus_labels('{__name__=~"process_.*"}') == {"job", "instance"}


def test_range_fields_add_the_summary_figures_to_the_query_fields() -> None:
    assert FIELDS[("prometheus", "query")] < FIELDS[("prometheus", "range")]
    assert {"first_value", "last_value", "min", "max", "trend"} <= FIELDS[("prometheus", "range")]


def test_the_json_schema_describes_the_prometheus_step_kind() -> None:
    result = CliRunner().invoke(schema, [])
    assert result.exit_code == 0
    document = json.loads(result.output)
    defs = document["$defs"]
    assert "prometheus" in defs["Step"]["properties"]
    assert set(defs["PrometheusCall"]["properties"]) == {"query", "range", "timeout_s"}
    assert defs["PrometheusRange"]["properties"]["start"]["pattern"].startswith("^(\\d+")
