"""A small runbook the scheduler has work in: a re-checked detection condition (unprocessed
webhooks in the backend's database) and a monitor step watching that backlog drain.

The seven runbooks may not use ``monitor:`` yet; the tests of what the scheduler's events look
like (the view, Slack, the console) build this one instead. Its figure is a row count a test
changes by inserting and deleting rows in its scratch copy of the backend's database.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from agape_ops.runbooks.model import Runbook

RUNBOOK_ID = "webhook-watch"
ALERTNAME = "WebhookWatch"
COUNT = "SELECT count(*) AS pending FROM webhook_events WHERE status = 'received'"

RUNBOOK = f"""
id: {RUNBOOK_ID}
title: Webhooks waiting <b>&amp; watched</b>
severity: sev1
summary: Webhooks are received but not processed; watch the backlog drain.
owner: devops
recheck: 1h
triggers:
  - alertname: {ALERTNAME}
detection:
  - id: backlog
    title: Unprocessed webhooks
    when: pending > 0
    finding: "{{{{ pending }}}} webhooks waiting"
    postgres:
      sql: "{COUNT}"
resolution:
  - id: drain
    title: Backlog draining
    when: pending > 0
    finding: "{{{{ pending }}}} webhooks still waiting"
    monitor:
      every: 30s
      for: 1h
      until: pending == 0
      figure: pending
      unit: webhooks
    postgres:
      sql: "{COUNT}"
post_incident:
  - id: review
    title: Write the review
    manual:
      items:
        - Write the timeline
        - Book the review <!channel>
"""


def watch_runbook() -> Runbook:
    """Return the runbook as the loader reads it (no services needed)."""
    return Runbook.model_validate(yaml.safe_load(RUNBOOK))


def write_runbook(folder: Path) -> Path:
    """Write the runbook as a runbooks folder holding it alone; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{RUNBOOK_ID}.yaml").write_text(RUNBOOK, encoding="utf-8")
    return folder
