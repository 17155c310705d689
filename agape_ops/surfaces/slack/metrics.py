"""The bot's Prometheus metrics, served on ``GET /metrics``.

One registry per bot (not the process-wide default), so tests and two bots in one process never
share counters. Runs by state are read from the store when scraped; the rest count as they go.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "agape_ops_slack_events",
            "Slack requests received, by kind (event, action, view, command) and outcome.",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "agape_ops_alerts",
            "Alerts taken in, by what intake did (opened, attached, resolved, unmatched).",
            ["intake"],
            registry=self.registry,
        )
        self.runs = Gauge(
            "agape_ops_runs",
            "Runs in the store by state (the most recent 1000).",
            ["state"],
            registry=self.registry,
        )
        self.scheduler_leading = Gauge(
            "agape_ops_scheduler_leading",
            "1 when this process runs the scheduler (holds its lease), else 0.",
            registry=self.registry,
        )
        self.scheduler_jobs = Gauge(
            "agape_ops_scheduler_jobs",
            "Scheduled jobs this process ran since it started, by outcome (fired, failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.steps = Counter(
            "agape_ops_step_outcomes",
            "Step outcomes, by adapter kind and outcome.",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.adapter_latency = Histogram(
            "agape_ops_adapter_latency_seconds",
            "How long steps' adapter calls took.",
            ["kind"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.slack_errors = Counter(
            "agape_ops_slack_api_errors",
            "Slack Web API calls that failed, by method and error (ratelimited included).",
            ["method", "error"],
            registry=self.registry,
        )

    def slack_error(self, method: str, error: str) -> None:
        self.slack_errors.labels(method=method, error=error).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
