"""Every message and view the Slack surface can build, for each of the seven runbooks in many
states, is within Slack's Block Kit limits, escapes what came from data, and puts on each
button exactly what the view decided (label, style, confirmation, the command it sends).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from block_kit_limits import message_problems, view_problems
from watch_runbook import watch_runbook

from agape_ops.engine.records import (
    Approval,
    Event,
    Run,
    RunState,
    ScheduledJob,
    StepRecord,
    StepState,
)
from agape_ops.engine.results import StepResult
from agape_ops.engine.views import RunView, Style, run_view
from agape_ops.runbooks.catalog import load_catalog
from agape_ops.runbooks.loader import load_team_file
from agape_ops.runbooks.model import Risk, Runbook
from agape_ops.runbooks.team import Team
from agape_ops.surfaces.slack import blocks, card, ids, modals, replies, watching

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog([ROOT / "runbooks"])
TEAM = load_team_file(ROOT / "team.yaml")
T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
SEVEN = sorted(CATALOG.runbooks)
HOSTILE = "<!channel> <@U0BOSS> ```x``` & <https://evil.example|click> " + "é" * 40


def big_result(columns: list[str], rows: int = 250) -> dict[str, Any]:
    """A result bigger than any reply: many rows, long cells, mrkdwn and backticks in them."""
    cells = [{c: f"{HOSTILE} {c} {i}" * 3 for c in columns} for i in range(rows)]
    return {
        "summary": f"{rows} rows",
        "columns": columns,
        "rows": cells[:200],
        "total_rows": rows,
        "values": {"rate": 0.1234567, "note": HOSTILE},
        "text": HOSTILE * 80,
    }


def states(runbook: Runbook) -> Iterator[tuple[str, dict[str, StepRecord], RunState]]:
    """The states a run of ``runbook`` passes through, worst cases included."""
    steps = list(runbook.steps())
    yield "fresh", {}, RunState.OPEN
    done: dict[str, StepRecord] = {}
    for step in steps:
        read = [c for action in step.row_actions for c in action.inputs.values()]
        columns = [*dict.fromkeys([*read, "id", "detail"])]
        state = StepState.FAILED if step.risk is Risk.READ else StepState.DONE
        done[step.id] = StepRecord(
            "INC-7",
            step.id,
            state=state,
            result=big_result(columns),
            finding=f"{step.title}: {HOSTILE}" * 5,
            actor="U0ALICE",
            finished_at=T0,
            attempts=2,
            items_done=[0],
        )
    yield "everything ran", done, RunState.ACKNOWLEDGED
    errors = {
        s.id: StepRecord("INC-7", s.id, state=StepState.ERROR, error=HOSTILE, finding=HOSTILE)
        for s in steps
    }
    yield "every call failed", errors, RunState.OPEN
    yield "resolved", done, RunState.RESOLVED


def view_of(
    runbook: Runbook,
    records: dict[str, StepRecord],
    state: RunState,
    *,
    team: Team = TEAM,
    allow_shell: bool = True,
) -> RunView:
    run = Run(
        "INC-7",
        7,
        runbook.id,
        runbook.title,
        runbook.severity.value,
        state,
        "U0ALICE",
        T0,
        alert_count=12,
        alert_resolved_at=T0,
        acknowledged_by="U0ALICE",
        surface={"source": {"channel": "C0ALERTS", "ts": "1.2"}},
    )
    approvals = [
        Approval("INC-7", s.id, "U0ALICE", T0, {"reference": HOSTILE})
        for s in runbook.steps()
        if s.two_person
    ]
    return run_view(
        run,
        runbook,
        records,
        approvals,
        team,
        now=T0 + timedelta(minutes=5),
        allow_shell=allow_shell,
    )


def cases() -> Iterator[Any]:
    for runbook_id in SEVEN:
        runbook = CATALOG.runbooks[runbook_id]
        for name, records, state in states(runbook):
            yield pytest.param(runbook, records, state, id=f"{runbook_id}-{name}")


def texts(payload: Any) -> Iterator[str]:
    """Every mrkdwn text in a payload, wherever it sits (plain_text is shown as it is: Slack
    reads no mentions or links in it)."""
    if isinstance(payload, dict):
        if payload.get("type") == "mrkdwn" and isinstance(payload.get("text"), str):
            yield payload["text"]
        for value in payload.values():
            yield from texts(value)
    elif isinstance(payload, list):
        for item in payload:
            yield from texts(item)


def assert_escaped(payload: Any) -> None:
    for text in texts(payload):
        assert "<!channel>" not in text, text
        assert "<@U0BOSS>" not in text, text
        assert "<https://evil" not in text, text


def event(step_id: str, kind: str = "step.finished") -> Event:
    return Event("INC-7", T0, "U0ALICE", kind, HOSTILE, step_id=step_id, duration_ms=1234)


@pytest.mark.parametrize(("runbook", "records", "state"), list(cases()))
def test_every_message_and_view_is_within_block_kit_limits_and_escaped(
    runbook: Runbook, records: dict[str, StepRecord], state: RunState
) -> None:
    view = view_of(runbook, records, state)
    rendered = card.card(view)
    built: list[tuple[str, dict[str, Any]]] = [
        ("card", {"blocks": rendered, "text": card.card_text(view)})
    ]
    results = [replies.result_reply(view, step, event(step.id)) for step in view.steps]
    for packed in blocks.pack(results):
        built.append(("results", {"blocks": packed, "text": blocks.message_text(packed)}))
    for step in view.steps:
        if step.result is not None:
            assert replies.result_file(step, step.result).count("\n") > len(step.result.rows)
    for kind in ("run.acknowledged", "note.added", "step.approved", "alert.resolved"):
        built.append(("event", {"blocks": replies.event_reply(event("x", kind)), "text": "t"}))
    built.append(
        ("resolved", {"blocks": replies.resolved_alert_reply(view, event("x")), "text": "t"})
    )
    built.append(
        (
            "unmatched",
            {"blocks": replies.unmatched_reply(HOSTILE, CATALOG.runbooks.values()), "text": "t"},
        )
    )
    for name, message in built:
        assert message_problems(message) == [], name
        assert_escaped(message["blocks"])
    forms = [modals.step_modal(view, s) for s in view.steps if not s.is_checklist]
    forms += [modals.checklist_modal(view, s) for s in view.steps if s.is_checklist]
    home = modals.home_view([(view.run, "5 min")] * 40, CATALOG.runbooks.values(), TEAM)
    for modal in [*forms, home]:
        assert view_problems(modal) == [], modal.get("title")
        assert_escaped(modal["blocks"])


@pytest.mark.parametrize("runbook_id", SEVEN)
def test_each_button_on_the_card_says_what_the_view_decided(runbook_id: str) -> None:
    runbook = CATALOG.runbooks[runbook_id]
    view = view_of(runbook, {}, RunState.OPEN)
    buttons = {
        ids.decode(e["value"]).step_id: e
        for block in card.card(view)
        if block["type"] == "actions"
        for e in block["elements"]
        if ids.kind_of(e["action_id"]) in (ids.STEP, ids.CHECKLIST)
    }
    assert set(buttons) == {s.id for s in view.steps}
    for step in view.steps:
        element = buttons[step.id]
        assert element["text"]["text"].startswith(f"{step.number}. ")
        target = ids.decode(element["value"])
        assert (target.run_id, target.seen) == ("INC-7", 0)
        if step.is_checklist:
            assert ids.kind_of(element["action_id"]) == ids.CHECKLIST
        elif not step.changes:
            assert "confirm" not in element
            assert "style" not in element
        elif step.inputs:
            assert "confirm" not in element  # its modal states what it does and asks
        else:
            assert element["confirm"]["text"]["text"] == blocks.cut(step.confirm or "", 300)
            danger = step.risk is Risk.DANGEROUS
            assert (element.get("style") == "danger") is danger
            assert element["style"] in ("danger", "primary")


def test_a_change_done_before_says_so_in_its_confirmation() -> None:
    runbook = CATALOG.runbooks["queue-backlog"]
    step = next(s for s in runbook.steps() if s.changes_things and not s.inputs and not s.manual)
    done = {
        step.id: StepRecord(
            "INC-7", step.id, state=StepState.DONE, actor="U0ALICE", finished_at=T0, attempts=1
        )
    }
    view = view_of(runbook, done, RunState.ACKNOWLEDGED)
    element = next(
        e
        for block in card.card(view)
        if block["type"] == "actions"
        for e in block["elements"]
        if ids.kind_of(e["action_id"]) == ids.STEP and ids.decode(e["value"]).step_id == step.id
    )
    assert element["confirm"]["text"]["text"].startswith("Already done at 03:00 UTC by U0ALICE")
    assert ids.decode(element["value"]).seen == 1


def test_revoking_sessions_asks_for_the_user_in_a_modal_labelled_user() -> None:
    runbook = CATALOG.runbooks["security-incident"]
    view = view_of(runbook, {}, RunState.OPEN)
    revoke = next(s for s in view.steps if "revoke" in s.id and s.changes)
    modal = modals.step_modal(view, revoke)
    labels = [b["label"]["text"].lower() for b in modal["blocks"] if b["type"] == "input"]
    assert any("user" in label for label in labels), labels
    assert modal["submit"]["text"].lower().startswith("revoke")
    assert ids.decode(modal["private_metadata"]).step_id == revoke.id


def test_a_tampered_or_foreign_value_is_refused_not_guessed() -> None:
    for value in ("", "x", "[]", json.dumps({"s": "a"}), json.dumps({"r": 1}), "{" * 5000):
        with pytest.raises(Exception, match=r"not one the bot made|not readable"):
            ids.decode(value)
    with pytest.raises(Exception, match="not readable"):
        ids.decode(json.dumps({"r": "INC-1", "i": {"a": 1}}))


def test_a_table_is_aligned_monospace_and_cut_within_a_section() -> None:
    result = StepResult.model_validate(big_result(["id", "detail"], rows=3))
    text = blocks.table_text(result)
    assert text.startswith("```")
    assert text.endswith("```")
    assert len(text) <= blocks.MAX_SECTION
    assert "&lt;!channel&gt;" in text


def test_user_ids_become_mentions_and_anything_else_stays_text() -> None:
    assert blocks.who("U0ALICE") == "<@U0ALICE>"
    assert blocks.who("alice") == "alice"
    assert blocks.who("<!here>") == "&lt;!here&gt;"
    assert blocks.who(None) == "nobody"


def test_a_card_with_no_team_and_a_lost_runbook_still_renders() -> None:
    runbook = CATALOG.runbooks["high-error-rate"]
    view = view_of(runbook, {}, RunState.OPEN, team=Team())
    lost = run_view(view.run, None, {}, [], Team(), now=T0)
    for each in (view, lost):
        rendered = card.card(each)
        assert message_problems({"blocks": rendered, "text": "t"}) == []
    assert "no longer loaded" in json.dumps(card.card(lost))
    run_row = [b for b in card.card(view) if b.get("block_id", "").startswith("run.")]
    labels = [e["text"]["text"] for b in run_row for e in b["elements"]]
    assert labels == ["Acknowledge", "Mitigated", "Resolve", "Export timeline"]
    acknowledge = run_row[0]["elements"][0]
    assert acknowledge["style"] == Style.PRIMARY.value
    assert "confirm" not in acknowledge


def test_the_card_marks_the_likely_cause_and_warnings_in_what_is_wrong_now() -> None:
    runbook = CATALOG.runbooks["high-error-rate"]
    records = {
        "cloudinary_status": StepRecord(
            "INC-7", "cloudinary_status", StepState.ERROR, finding="Cloudinary: cannot reach it"
        ),
        "redis_ping": StepRecord(
            "INC-7", "redis_ping", StepState.ERROR, finding="Redis: unreachable <refused>"
        ),
        "error_rate": StepRecord(
            "INC-7", "error_rate", StepState.FAILED, finding="5xx error rate: 7.50%"
        ),
    }
    message = card.card(view_of(runbook, records, RunState.OPEN))

    wrong = next(b for b in message if "What is wrong now" in b.get("text", {}).get("text", ""))
    assert wrong["text"]["text"].splitlines() == [
        "*What is wrong now*",
        "• 5xx error rate: 7.50%",
        "🔴 *Likely cause:* Redis: unreachable &lt;refused&gt;",
        "⚠️ Warning: Cloudinary: cannot reach it",
    ]
    assert message_problems({"blocks": message, "text": "t"}) == []


def test_with_shell_off_a_shell_step_shows_its_command_and_its_reply_is_a_code_block() -> None:
    runbook = CATALOG.runbooks["queue-backlog"]
    fresh = view_of(runbook, {}, RunState.OPEN, allow_shell=False)
    step = fresh.step("clear_failed_jobs")
    message = card.card(fresh)

    line = next(
        ln
        for b in message
        for ln in b.get("text", {}).get("text", "").splitlines()
        if "Clear dead jobs" in ln
    )
    assert line.endswith("Clear dead jobs — run by hand: `node scripts/clear-failed-jobs.js`")
    pressed = next(
        e
        for b in message
        if b["type"] == "actions"
        for e in b["elements"]
        if e["text"]["text"].endswith("Show command: Clear dead jobs")
    )
    assert pressed["text"]["text"] == f"{step.number}. Show command: Clear dead jobs"
    assert "confirm" not in pressed
    assert "style" not in pressed

    finding = (
        "Shell steps are off (OPS_ALLOW_SHELL): run it by hand: node scripts/clear-failed-jobs.js"
    )
    record = StepRecord(
        "INC-7",
        step.id,
        StepState.HANDED_OVER,
        finding=finding,
        result={"summary": "handed over to U0ALICE", "text": "node scripts/clear-failed-jobs.js"},
        actor="U0ALICE",
    )
    handed = view_of(runbook, {step.id: record}, RunState.OPEN, allow_shell=False)
    event = Event(
        "INC-7", T0, "U0ALICE", "step.handed_over", finding, step_id=step.id, outcome="handed_over"
    )
    reply = replies.result_reply(handed, handed.step(step.id), event)

    texts = [b["text"]["text"] for b in reply if b["type"] == "section"]
    assert texts[0].startswith(f"📋 *{step.number}. Clear dead jobs* — handed over\n")
    assert texts[1] == "```node scripts/clear-failed-jobs.js```"
    assert message_problems({"blocks": reply, "text": "t"}) == []


@pytest.mark.parametrize("state", [RunState.OPEN, RunState.ACKNOWLEDGED, RunState.RESOLVED])
def test_the_schedulers_messages_are_within_block_kit_limits_and_escaped(state: RunState) -> None:
    runbook = watch_runbook()
    run = Run("INC-7", 7, runbook.id, HOSTILE, "sev1", state, "U1", T0)
    run.watch = {"escalated": 3, "escalated_at": T0.isoformat(), "clear": False, "flaps": 40}
    samples = [[T0.isoformat(), i * 1e9 if i % 3 else None, "failed"] for i in range(30)]
    drain = StepRecord(
        "INC-7",
        "drain",
        StepState.ERROR,
        finding=HOSTILE * 20,
        monitor={"round": 1, "state": "watching", "ends_at": T0.isoformat(), "samples": samples},
    )
    view = run_view(run, runbook, {"drain": drain}, [], TEAM, now=T0 + timedelta(minutes=5))
    step = view.step("drain")

    def said(kind: str, **detail: Any) -> Event:
        return Event("INC-7", T0 + timedelta(minutes=9), "bot", kind, HOSTILE * 20, detail=detail)

    notify = ["S0000ONCALL", "U0000DEVOPS", "<!channel>", HOSTILE] * 10
    jobs = [ScheduledJob(f"j{i}", "INC-7", "escalate", HOSTILE, T0) for i in range(200)]
    built = {
        "card": card.card(view),
        "page": watching.escalation_reply(
            view, said("run.escalated", level=2, of=3, notify=notify)
        ),
        "cleared": watching.cleared_reply(view, said("run.cleared", told=True, flaps=0)),
        "returned": watching.returned_reply(said("run.returned", told=True, flaps=1)),
        "status": watching.reminder_reply(view, said("run.reminded", what="status")),
        "left": watching.reminder_reply(
            view, said("run.reminded", what="post_incident", left=[HOSTILE] * 60)
        ),
        "monitor": watching.monitor_message(view, step),
        "stopped": watching.monitor_stopped_reply(step, said("monitor.stopped")),
        "jobs": [blocks.section(watching.jobs_text(jobs))],
    }
    for name, content in built.items():
        message = {"blocks": content, "text": blocks.message_text(content)}
        assert message_problems(message) == [], name
        assert_escaped(content)
    assert "<!subteam^S0000ONCALL>" in str(built["page"])
    assert "<@U0000DEVOPS>" in str(built["page"])
    assert len(watching.monitor_text(step)) <= blocks.MAX_FALLBACK
    assert "flapping (came back 40 times)" in str(built["card"])
    assert "📈" in card.step_line(step)
    has_ack = "Acknowledge" in str(built["page"])
    assert has_ack is (state is RunState.OPEN)  # the card's own button, while it is open
    has_resolve = "Resolve" in str(built["cleared"])
    assert has_resolve is (state is not RunState.RESOLVED)
