"""What the walkthrough tests share: the real bot, the backend's rows and queues, the alerts.

Each walkthrough builds the bot exactly as ``agape-ops serve`` does (``bootstrap.build``) against
a scratch copy of the backend's PostgreSQL and a claimed Redis database, with Paystack, its
status page, the admin API and Prometheus faked by respx (``walkthrough_http``). Alerts are
normalised and matched as the surfaces do, then the engine runs the walkthrough, one click at a
time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from walkthrough_http import (
    ADMIN,
    ADMIN_TOKEN,
    PAYSTACK,
    PAYSTACK_KEY,
    PROMETHEUS,
    STATUS_PAGE,
    FakeBackend,
)

from agape_ops.alerts.fingerprint import fingerprint
from agape_ops.alerts.model import Alert
from agape_ops.alerts.normalise import from_slack_event
from agape_ops.bootstrap import Container, build
from agape_ops.engine.commands import MarkItemDone, Outcome, RunStep, StartRun
from agape_ops.engine.records import StepRecord, StepState
from agape_ops.engine.results import StepResult
from agape_ops.runbooks.triggers import match_alert
from agape_ops.settings import Settings

REPO = Path(__file__).resolve().parents[2]

RESPONDER = "U_RESPONDER"
APPROVER = "U_APPROVER_1"
SECOND_APPROVER = "U_APPROVER_2"
STRANGER = "U_STRANGER"


def settings(backend_db: str, redis_db: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Return the bot's settings for one test: its databases, the fakes, the team."""
    values: dict[str, Any] = {
        "database_url": backend_db,
        "redis_url": redis_db,
        "paystack_api_url": PAYSTACK,
        "paystack_status_url": STATUS_PAGE,
        "paystack_secret_key": PAYSTACK_KEY,
        "admin_api_url": ADMIN,
        "admin_token": ADMIN_TOKEN,
        "prometheus_url": PROMETHEUS,
        "ops_database_url": f"sqlite:///{tmp_path}/ops.db",
        "runbooks_dir": REPO / "runbooks",
        "ops_team_file": REPO / "team.yaml",
        "ops_responders": [RESPONDER],
        "ops_approvers": [APPROVER, SECOND_APPROVER],
        "ops_connect_timeout_s": 1.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_bot(config: Settings) -> AsyncIterator[Container]:
    """Build the whole bot from settings and release it afterwards."""
    container = await build(config, configure_logs=False)
    try:
        yield container
    finally:
        await container.aclose()


# --- the walkthrough, as a surface drives it ----------------------------------------------------


@dataclass
class Walk:
    """One run of a runbook opened from an alert, driven through the engine."""

    container: Container
    run_id: str
    opened: Outcome
    reason: str
    clicks: int = 0
    last: RunStep | None = None

    async def steps(self) -> dict[str, StepRecord]:
        return await self.container.store.get_steps(self.run_id)

    async def findings(self) -> dict[str, str]:
        """Return each step's finding so far, by step id."""
        return {sid: r.finding or "" for sid, r in (await self.steps()).items()}

    async def click(
        self,
        step_id: str,
        actor: str,
        *,
        confirmed: bool = True,
        inputs: dict[str, str] | None = None,
    ) -> Outcome:
        """Run a step as a person would: one click, one idempotency key."""
        self.clicks += 1
        self.last = RunStep(
            run_id=self.run_id,
            step_id=step_id,
            actor=actor,
            key=f"click-{self.run_id}-{self.clicks}",
            inputs=dict(inputs or {}),
            confirmed=confirmed,
        )
        return await self.container.engine.execute(self.last)

    async def redeliver(self) -> Outcome:
        """Deliver the last click again, as Slack does when it retries a request."""
        assert self.last is not None
        return await self.container.engine.execute(self.last)

    async def timeline(self) -> list[str]:
        return [event.summary for event in await self.container.store.events(self.run_id)]

    async def state(self, step_id: str) -> StepState:
        return (await self.steps())[step_id].state

    async def row_inputs(self, step_id: str, row: int, action: int = 0) -> dict[str, str]:
        """Return the inputs a row action's button carries, read from that row as surfaces do."""
        step = self.container.catalog.runbooks[await self.runbook_id()].step(step_id)
        assert step is not None
        record = (await self.steps())[step_id]
        assert record.result is not None, f"{step_id} has no result"
        values = StepResult.model_validate(record.result).rows[row]
        chosen = step.row_actions[action]
        return {name: str(values[column]) for name, column in chosen.inputs.items()}

    async def runbook_id(self) -> str:
        run = await self.container.store.get_run(self.run_id)
        assert run is not None
        return run.runbook_id

    async def tick_all(self, step_id: str, actor: str) -> None:
        """Mark every item of a checklist step done, one click each."""
        step = self.container.catalog.runbooks[await self.runbook_id()].step(step_id)
        assert step is not None
        assert step.manual is not None
        for item in range(len(step.manual.items)):
            self.clicks += 1
            done = await self.container.engine.execute(
                MarkItemDone(self.run_id, step_id, item, actor, f"tick-{self.run_id}-{self.clicks}")
            )
            assert done.ok, done.message


async def open_run(container: Container, alert: Alert, runbook_id: str) -> Walk:
    """Match the alert to a runbook as the surfaces do and open a run of it."""
    match = match_alert(alert, container.catalog.runbooks.values())
    assert match is not None, f"no runbook matches {alert.title!r}"
    assert match.runbook.id == runbook_id, f"{alert.title!r} matched {match.runbook.id}"
    outcome = await container.engine.execute(
        StartRun(
            runbook_id=match.runbook.id,
            actor="alertmanager",
            key=f"alert-{fingerprint(alert)}",
            alert=alert,
            fingerprint=fingerprint(alert),
        )
    )
    assert outcome.ok, outcome.message
    assert outcome.run is not None
    return Walk(container, outcome.run.id, outcome, match.reason)


def alertmanager_event(title: str) -> dict[str, Any]:
    """Return a Slack message event as Alertmanager's default Slack template posts it."""
    return {
        "type": "message",
        "subtype": "bot_message",
        "text": "",
        "username": "Alertmanager",
        "bot_id": "B07AMHOOK01",
        "attachments": [
            {
                "color": "a30200",
                "title": title,
                "title_link": "http://alertmanager.monitoring.svc:9093/#/alerts",
                "text": "",
                "fallback": title,
            }
        ],
        "ts": "1722500000.000100",
        "channel": "C07ALERTS01",
    }


def firing(alertname: str, instance: str = "api-1") -> Alert:
    """Return the Alert of an Alertmanager notification of ``alertname`` firing."""
    title = f"[FIRING:1] {alertname} agape-backend (prod {instance} critical)"
    alert = from_slack_event(alertmanager_event(title))
    assert alert is not None
    return alert


@pytest.fixture
async def bot(
    backend_db: str, redis_db: str, tmp_path: Path, fake: FakeBackend
) -> AsyncIterator[Container]:
    """The real bot over the test's PostgreSQL and Redis and the faked HTTP systems."""
    async with running_bot(settings(backend_db, redis_db, tmp_path)) as container:
        yield container


# --- rows in the backend's PostgreSQL -----------------------------------------------------------


async def seed(conn: psycopg.AsyncConnection[Any], *statements: str) -> None:
    """Run the statements that arrange a test's rows, in order."""
    for statement in statements:
        await conn.execute(statement)


async def scalar(conn: psycopg.AsyncConnection[Any], sql: str) -> Any:
    """Return the one value a query answers, to check what a step changed."""
    cursor = await conn.execute(sql)
    row = await cursor.fetchone()
    assert row is not None
    return row[0]
