"""The RunStore contract, proved the same way against a SQLite file and a PostgreSQL database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
import store_fixtures
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from store_fixtures import T0, event, new_run, together

from agape_ops.engine.records import Delivery, RunState, StepRecord, StepState
from agape_ops.engine.results import StepResult
from agape_ops.errors import Conflict, StoreError, UnknownRun
from agape_ops.store import SqlStore, open_store
from agape_ops.store.rows import MAX_RESULT_BYTES
from agape_ops.store.schema import MIGRATIONS, schema_version

pytestmark = pytest.mark.integration

store_url = store_fixtures.store_url
store = store_fixtures.store

LAGOS = timezone(timedelta(hours=1))


# Runs


async def test_create_run_numbers_runs_and_prefixes_ids(store: SqlStore) -> None:
    first = await store.create_run(new_run())
    second = await store.create_run(new_run(id="DRILL"))
    assert (first.id, first.number) == ("INC-1", 1)
    assert (second.id, second.number) == ("DRILL-2", 2)
    assert await store.get_run("INC-1") == first


async def test_create_run_uses_the_store_prefix_when_the_run_has_none(store_url: str) -> None:
    store = await open_store(store_url, run_prefix="OPS")
    try:
        created = await store.create_run(new_run(id=""))
    finally:
        await store.close()
    assert created.id == "OPS-1"


async def test_every_run_field_round_trips_with_utc_datetimes(store: SqlStore) -> None:
    later = datetime(2025, 3, 1, 4, 0, 0, 1, tzinfo=LAGOS)
    full = new_run(
        state=RunState.MITIGATED,
        created_at=datetime(2025, 3, 1, 3, 30, 15, 123456, tzinfo=LAGOS),
        alert={"title": "Paystack down", "labels": {"team": "payments"}, "values": {"rate": 0.5}},
        fingerprint="fp-1",
        inputs={"reference": "T123", "window": "15m"},
        rehearsal=True,
        surface={"channel": "C1", "thread_ts": "1700000000.000100", "messages": [1, "two"]},
        acknowledged_at=later,
        acknowledged_by="U2",
        mitigated_at=later + timedelta(minutes=5),
        resolved_at=later + timedelta(minutes=9),
        resolved_by="U3",
        closed_at=later + timedelta(hours=1),
    )
    created = await store.create_run(full)
    loaded = await store.get_run(created.id)
    assert loaded == created
    assert loaded is not None
    assert loaded.created_at == T0
    assert loaded.state is RunState.MITIGATED
    for moment in (loaded.created_at, loaded.acknowledged_at, loaded.closed_at):
        assert moment is not None
        assert moment.utcoffset() == timedelta(0)


async def test_get_run_returns_none_for_an_unknown_id(store: SqlStore) -> None:
    assert await store.get_run("INC-404") is None


async def test_update_run_changes_only_the_columns_it_names(store: SqlStore) -> None:
    run = await store.create_run(new_run(inputs={"reference": "T1"}, surface={"channel": "C1"}))
    changes = {
        "state": RunState.ACKNOWLEDGED,
        "acknowledged_at": T0 + timedelta(minutes=2),
        "acknowledged_by": "U9",
    }
    await store.update_run(run.id, **changes)
    stored = await store.get_run(run.id)
    assert stored is not None
    assert (stored.state, stored.acknowledged_by) == (RunState.ACKNOWLEDGED, "U9")
    assert stored.acknowledged_at == T0 + timedelta(minutes=2)
    assert (stored.inputs, stored.surface) == ({"reference": "T1"}, {"channel": "C1"})


async def test_update_run_of_a_run_never_created_raises_unknown_run(store: SqlStore) -> None:
    with pytest.raises(UnknownRun, match="INC-77"):
        await store.update_run("INC-77", state=RunState.RESOLVED)


async def test_list_runs_is_newest_first_filtered_by_state_and_limited(store: SqlStore) -> None:
    created = [await store.create_run(new_run()) for _ in range(4)]
    await store.update_run(created[1].id, state=RunState.RESOLVED)
    assert [r.id for r in await store.list_runs()] == ["INC-4", "INC-3", "INC-2", "INC-1"]
    assert [r.id for r in await store.list_runs(limit=2)] == ["INC-4", "INC-3"]
    resolved = await store.list_runs(states=[RunState.RESOLVED])
    assert [r.id for r in resolved] == ["INC-2"]
    assert resolved[0].state is RunState.RESOLVED
    both = await store.list_runs(states=[RunState.OPEN, RunState.RESOLVED], limit=3)
    assert [r.id for r in both] == ["INC-4", "INC-3", "INC-2"]
    assert await store.list_runs(states=[]) == []


async def test_a_fingerprint_has_at_most_one_active_run(store: SqlStore) -> None:
    first = await store.create_run(new_run(fingerprint="fp"))
    await store.create_run(new_run(fingerprint="other"))
    with pytest.raises(Conflict):
        await store.create_run(new_run(fingerprint="fp"))
    assert await store.find_active_run("fp") == first
    await store.update_run(first.id, state=RunState.RESOLVED)
    assert await store.find_active_run("fp") is None
    second = await store.create_run(new_run(fingerprint="fp"))
    assert await store.find_active_run("fp") == second
    await store.create_run(new_run(fingerprint=None))
    await store.create_run(new_run(fingerprint=None))  # runs opened by hand have none
    assert await store.find_active_run("never-seen") is None


# Steps


async def test_step_records_round_trip_and_save_step_overwrites(store: SqlStore) -> None:
    run = await store.create_run(new_run())
    result = StepResult(
        summary="3 failed webhooks",
        columns=["id", "amount"],
        rows=[{"id": "w1", "amount": 1500.5}, {"id": "w2", "amount": None}],
        total_rows=3,
        values={"rate": 0.0625, "ok": False},
        duration_ms=42,
    ).model_dump()
    record = StepRecord(
        run_id=run.id,
        step_id="failed-webhooks",
        state=StepState.FAILED,
        result=result,
        finding="3 webhooks failed in 15 minutes",
        actor="U1",
        started_at=datetime(2025, 3, 1, 3, 0, tzinfo=LAGOS),
        finished_at=T0,
        attempts=2,
        items_done=[0, 2],
    )
    await store.save_step(record)
    await store.save_step(StepRecord(run_id=run.id, step_id="verify"))
    loaded = await store.get_steps(run.id)
    assert loaded == {"failed-webhooks": record, "verify": StepRecord(run.id, "verify")}
    assert loaded["failed-webhooks"].state is StepState.FAILED
    assert loaded["verify"].state is StepState.PENDING

    record.state, record.error, record.result = StepState.ERROR, "PostgreSQL: unreachable", None
    await store.save_step(record)
    assert (await store.get_steps(run.id))["failed-webhooks"] == record
    assert await store.get_steps("INC-404") == {}


async def test_a_lease_is_renewed_only_by_its_claim_and_found_once_it_runs_out(
    store: SqlStore,
) -> None:
    run = await store.create_run(new_run())
    running = StepRecord(
        run.id,
        "check",
        StepState.RUNNING,
        claim_key="click-1",
        lease_until=T0 + timedelta(seconds=30),
    )
    await store.save_step(running)
    assert await store.renew_lease(run.id, "check", "click-2", T0 + timedelta(minutes=5)) is False
    assert await store.expired_leases(T0) == []
    assert await store.expired_leases(T0 + timedelta(seconds=31)) == [(run.id, "check")]
    assert await store.renew_lease(run.id, "check", "click-1", T0 + timedelta(minutes=1)) is True
    assert await store.expired_leases(T0 + timedelta(seconds=31)) == []
    assert (await store.get_steps(run.id))["check"].lease_until == T0 + timedelta(minutes=1)
    await store.save_step(StepRecord(run.id, "check", StepState.PASSED, claim_key="click-1"))
    assert await store.renew_lease(run.id, "check", "click-1", T0 + timedelta(hours=1)) is False


async def test_an_oversized_result_loses_rows_but_stays_a_valid_result(store: SqlStore) -> None:
    run = await store.create_run(new_run())
    rows = [{"id": n, "payload": "x" * 2000} for n in range(400)]
    big = StepResult(summary="400 orders", columns=["id", "payload"], rows=rows).model_dump()
    assert len(json.dumps(big)) > MAX_RESULT_BYTES
    await store.save_step(StepRecord(run.id, "orders", StepState.DONE, result=big))

    stored = (await store.get_steps(run.id))["orders"].result
    assert stored is not None
    assert len(json.dumps(stored)) <= MAX_RESULT_BYTES
    kept = StepResult.model_validate(stored)
    assert 0 < len(kept.rows) < 400
    assert kept.rows == rows[: len(kept.rows)]
    assert kept.total_rows == 400
    assert kept.truncated
    assert kept.summary.startswith("400 orders (stored ")
    assert "of 400 rows" in kept.summary


async def test_an_oversized_text_output_is_cut_and_marked(store: SqlStore) -> None:
    run = await store.create_run(new_run())
    big = StepResult(summary="pm2 logs", text="line\n" * 100_000).model_dump()
    await store.save_step(StepRecord(run.id, "logs", StepState.DONE, result=big))

    stored = (await store.get_steps(run.id))["logs"].result
    assert stored is not None
    assert len(json.dumps(stored)) <= MAX_RESULT_BYTES
    kept = StepResult.model_validate(stored)
    assert kept.text is not None
    assert kept.text.startswith("line\nline\n")
    assert kept.text.endswith("[cut: output too large to store]")
    assert "output cut short" in kept.summary


# Timeline


async def test_events_are_numbered_per_run_and_returned_in_order(store: SqlStore) -> None:
    one = await store.create_run(new_run())
    two = await store.create_run(new_run())
    first = await store.append_event(event(one.id, "started"))
    await store.append_event(event(two.id, "started"))
    detailed = event(
        one.id,
        "step_result",
        step_id="verify",
        outcome="failed",
        duration_ms=812,
        detail={"rows": [{"ref": "T1"}], "rate": 0.25},
        at=datetime(2025, 3, 1, 3, 31, tzinfo=LAGOS),
    )
    second = await store.append_event(detailed)
    assert (first.seq, second.seq) == (1, 2)
    timeline = await store.events(one.id)
    assert timeline == [first, second]
    assert timeline[1].at == datetime(2025, 3, 1, 2, 31, tzinfo=UTC)
    assert timeline[1].detail == {"rows": [{"ref": "T1"}], "rate": 0.25}
    assert [e.seq for e in await store.events(two.id)] == [1]
    assert await store.events("INC-404") == []


# Idempotency, approvals, locks


async def test_claim_command_answers_later_claims_with_the_stored_outcome(
    store: SqlStore,
) -> None:
    first = await store.claim_command("INC-1:reprocess:click-1", "INC-1")
    pending = await store.claim_command("INC-1:reprocess:click-1", "INC-1")
    await store.finish_command("INC-1:reprocess:click-1", {"status": "done", "count": 3})
    finished = await store.claim_command("INC-1:reprocess:click-1", "INC-1")
    assert (first.claimed, first.outcome) == (True, None)
    assert (pending.claimed, pending.outcome) == (False, None)
    assert (finished.claimed, finished.outcome) == (False, {"status": "done", "count": 3})
    assert (await store.claim_command("INC-1:reprocess:click-2", None)).claimed is True


async def test_approvals_count_each_approver_once_and_can_be_cleared(store: SqlStore) -> None:
    assert await store.add_approval("INC-1", "refund", "U1") == ["U1"]
    assert await store.add_approval("INC-1", "refund", "U1") == ["U1"]
    assert sorted(await store.add_approval("INC-1", "refund", "U2")) == ["U1", "U2"]
    assert await store.add_approval("INC-1", "other-step", "U3") == ["U3"]
    await store.clear_approvals("INC-1", "refund")
    assert await store.add_approval("INC-1", "refund", "U4") == ["U4"]
    assert await store.add_approval("INC-1", "other-step", "U3") == ["U3"]


async def test_locks_are_held_by_one_run_until_it_releases_them(store: SqlStore) -> None:
    assert await store.acquire_lock("db-failover", "INC-1") is None
    assert await store.acquire_lock("db-failover", "INC-1") is None
    assert await store.acquire_lock("db-failover", "INC-2") == "INC-1"
    await store.release_lock("db-failover", "INC-2")  # not the holder: nothing happens
    assert await store.acquire_lock("db-failover", "INC-2") == "INC-1"
    assert await store.acquire_lock("queue-drain", "INC-2") is None
    await store.release_lock("db-failover", "INC-1")
    assert await store.acquire_lock("db-failover", "INC-2") is None
    assert await store.acquire_lock("db-failover", "INC-1") == "INC-2"


@pytest.mark.parametrize("finished", [RunState.RESOLVED, RunState.CLOSED])
async def test_a_lock_its_run_kept_after_finishing_is_free_for_another_run(
    store: SqlStore, finished: RunState
) -> None:
    holder = await store.create_run(new_run())
    other = await store.create_run(new_run())
    assert await store.acquire_lock("stock", holder.id) is None
    assert await store.acquire_lock("stock", other.id) == holder.id

    await store.update_run(holder.id, state=finished)

    assert await store.acquire_lock("stock", other.id) is None
    assert await store.acquire_lock("stock", holder.id) == other.id


async def test_remember_event_is_true_only_the_first_time(store: SqlStore) -> None:
    assert await store.remember_event("Ev123") is True
    assert await store.remember_event("Ev123") is False
    assert await store.remember_event("Ev124") is True


async def test_a_delivery_is_sent_once_and_taken_over_when_its_sender_dies(
    store: SqlStore,
) -> None:
    """One process claims an event's Slack message; another is told it is held; when the first
    finishes nobody sends it again; when a claimer dies, its claim is taken over after the
    lease, once."""
    lease = timedelta(seconds=30)
    t0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    assert await store.claim_delivery("slack:1", t0, lease) is Delivery.CLAIMED
    assert await store.claim_delivery("slack:1", t0, lease) is Delivery.HELD
    await store.finish_delivery("slack:1", t0)
    assert await store.claim_delivery("slack:1", t0 + 2 * lease, lease) is Delivery.DONE

    assert await store.claim_delivery("slack:2", t0, lease) is Delivery.CLAIMED  # then dies
    later = t0 + lease - timedelta(seconds=1)
    assert await store.claim_delivery("slack:2", later, lease) is Delivery.HELD
    after = t0 + lease + timedelta(seconds=1)
    assert await store.claim_delivery("slack:2", after, lease) is Delivery.CLAIMED
    assert await store.claim_delivery("slack:2", after, lease) is Delivery.HELD


# Durability and migrations


async def test_a_store_reopened_from_scratch_mid_run_continues_the_run(store_url: str) -> None:
    first = await open_store(store_url)
    try:
        run = await first.create_run(new_run(fingerprint="fp", inputs={"reference": "T1"}))
        await first.save_step(StepRecord(run.id, "verify", StepState.RUNNING, claim_key="k"))
        await first.save_step(StepRecord(run.id, "check", StepState.FAILED, finding="3 failed"))
        await first.append_event(event(run.id, "started"))
        await first.append_event(event(run.id, "step_result", step_id="check"))
        await first.add_approval(run.id, "refund", "U7")
        await first.acquire_lock("payments", run.id)
        await first.claim_command("done-key", run.id)
        await first.finish_command("done-key", {"status": "ok"})
        await first.claim_command("pending-key", run.id)
        await first.remember_event("Ev1")
    finally:
        await first.close()

    second = await open_store(store_url)
    try:
        assert await second.get_run(run.id) == run
        assert await second.find_active_run("fp") == run
        steps = await second.get_steps(run.id)
        assert (steps["verify"].state, steps["verify"].claim_key) == (StepState.RUNNING, "k")
        assert steps["check"].finding == "3 failed"
        assert [e.kind for e in await second.events(run.id)] == ["started", "step_result"]
        assert (await second.append_event(event(run.id, "resolved"))).seq == 3
        assert await second.add_approval(run.id, "refund", "U8") == ["U7", "U8"]
        assert await second.acquire_lock("payments", "INC-99") == run.id
        done = await second.claim_command("done-key", run.id)
        assert (done.claimed, done.outcome) == (False, {"status": "ok"})
        pending = await second.claim_command("pending-key", run.id)
        assert (pending.claimed, pending.outcome) == (False, None)
        assert await second.remember_event("Ev1") is False
        assert (await second.create_run(new_run())).number == run.number + 1
    finally:
        await second.close()


async def test_opening_a_store_again_applies_no_migration_twice(store_url: str) -> None:
    stores = await together(open_store(store_url), open_store(store_url))
    try:
        run = await stores[0].create_run(new_run())
    finally:
        for opened in stores:
            await opened.close()
    again = await open_store(store_url)
    try:
        assert await again.schema_version() == 3
        assert await again.migrate() == 3
        assert await again.get_run(run.id) == run
    finally:
        await again.close()


async def test_a_store_from_a_newer_agape_ops_is_refused(store: SqlStore, store_url: str) -> None:

    async with store._write() as conn:  # arrange what a future release would have written
        await conn.execute(
            schema_version.insert().values(version=99, description="future", applied_at=T0)
        )
    with pytest.raises(StoreError, match="schema version 99, newer than this agape-ops"):
        await open_store(store_url)


async def test_a_version_1_store_upgrades_keeping_every_run_and_event(store_url: str) -> None:
    def first_version(conn: Connection) -> None:
        schema_version.create(conn)
        MIGRATIONS[0].apply(conn)
        conn.execute(schema_version.insert().values(version=1, description="v1", applied_at=T0))
        run: dict[str, object] = {"runbook_id": "r", "title": "t", "severity": "sev2"}
        run |= {
            "created_by": "U1",
            "created_at": T0,
            "inputs": "{}",
            "rehearsal": False,
            "surface": "{}",
        }
        for number, state in ((1, "open"), (2, "acknowledged"), (3, "resolved")):
            values = {**run, "id": f"INC-{number}", "number": number, "state": state}
            conn.execute(sa.table("ops_runs", *map(sa.column, values)).insert().values(values))
        for second, (run_id, seq) in enumerate([("INC-1", 1), ("INC-2", 1), ("INC-1", 2)]):
            event_row: dict[str, object] = {"run_id": run_id, "seq": seq}
            event_row["at"] = T0 + timedelta(seconds=second)
            event_row |= {"actor": "U1", "kind": "note", "summary": "s", "detail": "{}"}
            conn.execute(
                sa.table("ops_events", *map(sa.column, event_row)).insert().values(event_row)
            )
        conn.execute(sa.text("UPDATE ops_runs SET fingerprint = 'fp'"))

    engine = create_async_engine(store_url)
    async with engine.begin() as conn:
        await conn.run_sync(first_version)
    await engine.dispose()

    store = await open_store(store_url)
    try:
        assert await store.schema_version() == 3
        runs = {r.id: r for r in await store.list_runs()}
        assert runs["INC-2"].fingerprint == "fp"  # the newest active run keeps it
        assert runs["INC-1"].fingerprint == "fp~INC-1"
        assert runs["INC-3"].fingerprint == "fp"  # resolved: no clash
        assert runs["INC-1"].watch == {}  # version 3: the scheduler has done nothing yet
        assert (await store.get_steps("INC-1")) == {}
        assert [e.position for e in await store.events_after(0)] == [1, 2, 3]
        appended = await store.append_event(event("INC-2"))
        assert (appended.seq, appended.position) == (2, 4)
    finally:
        await store.close()
