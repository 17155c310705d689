"""Hostile runbook SQL against a real database: nothing gets through, nothing lingers.

Tests run as a superuser, so the adapter's own guards are all that stands between a step and
the server: refusals happen before any SQL runs, reads stay read-only and bounded, writes change
no more than they previewed and their ``max_rows``, and the pooled connection comes back clean
after every failure. The pool holds one connection, so every call reuses the same session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from agape_ops.adapters.pgerrors import Location
from agape_ops.adapters.pgsession import Sessions, fetch
from agape_ops.adapters.postgres import PostgresAdapter, open_pool
from agape_ops.engine.ports import AdapterRequest
from agape_ops.errors import AdapterError, AdapterResponseError, AdapterTimeout, UnsafeOperation
from agape_ops.runbooks.model import PostgresCall, Risk, Step

pytestmark = pytest.mark.integration

Conn = psycopg.AsyncConnection[Any]

#: What a step could change or leave behind, read from outside the bot's session.
WORLD = (
    "SELECT (SELECT string_agg(sku || '=' || stock, ',' ORDER BY sku) FROM product_variants),"
    " (SELECT last_value FROM agape_seq), (SELECT count(*) FROM pg_largeobject_metadata),"
    " (SELECT count(*) FROM sessions), (SELECT count(*) FROM pg_class WHERE relname = 'loot'),"
    " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
    "   AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)
#: The bot's session as the next step would find it.
SESSION = (
    "SELECT current_setting('search_path'), current_setting('statement_timeout'),"
    " current_setting('lock_timeout'), current_setting('work_mem'),"
    " current_setting('standard_conforming_strings'), current_setting('application_name'),"
    " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),"
    " (SELECT count(*) FROM pg_listening_channels()), (SELECT count(*) FROM pg_cursors),"
    " (SELECT count(*) FROM pg_prepared_statements)"
)


def request(sql: str, *, risk: Risk = Risk.READ, **call: Any) -> AdapterRequest:
    params = call.pop("params", {})
    step = Step(id="probe", title="a step", risk=risk, postgres=PostgresCall(sql=sql, **call))
    return AdapterRequest(
        run_id="INC-9", step=step, call=step.call, idempotency_key="k", params=params
    )


def write(sql: str, **call: Any) -> AdapterRequest:
    return request(sql, risk=Risk.WRITE, **call)


@pytest.fixture
async def pool(backend_db: str) -> AsyncIterator[AsyncConnectionPool]:
    opened = await open_pool(backend_db, max_size=1)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def adapter(pool: AsyncConnectionPool) -> PostgresAdapter:
    return PostgresAdapter(pool, statement_timeout_ms=1000, lock_timeout_ms=300)


@pytest.fixture
async def world(backend_conn: Conn) -> Conn:
    """Seed variants S0-S2 at -1 and S3-S4 at 5, a sequence and one session; return the conn."""
    await backend_conn.execute("CREATE SEQUENCE agape_seq")
    cur = await backend_conn.execute("INSERT INTO products (name) VALUES ('Dress') RETURNING id")
    row = await cur.fetchone()
    assert row is not None
    for number, stock in enumerate([-1, -1, -1, 5, 5]):
        await backend_conn.execute(
            "INSERT INTO product_variants (product_id, sku, stock) VALUES (%s, %s, %s)",
            (row[0], f"S{number}", stock),
        )
    cur = await backend_conn.execute(
        "INSERT INTO users (email, name, password_hash) VALUES ('a@x.io', 'A', 'h') RETURNING id"
    )
    user = await cur.fetchone()
    assert user is not None
    await backend_conn.execute(
        "INSERT INTO sessions (user_id, expires_at) VALUES (%s, now())", (user[0],)
    )
    return backend_conn


async def snapshot(conn: Conn) -> tuple[Any, ...]:
    cur = await conn.execute(WORLD)
    row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def session_of(pool: AsyncConnectionPool) -> tuple[Any, ...]:
    async with pool.connection() as conn:
        cur = await conn.execute(SESSION)
        row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def refused_and_unchanged(
    adapter: PostgresAdapter, world: Conn, requests: list[AdapterRequest]
) -> None:
    """Every request is refused before it runs, and the database is exactly as it was."""
    before = await snapshot(world)
    for each in requests:
        with pytest.raises(UnsafeOperation, match="nothing was run") as caught:
            await adapter.execute(each)
        assert caught.value.step_id == "probe"
        assert await snapshot(world) == before, each.call


# --- reads -------------------------------------------------------------------------------------

SIDE_EFFECTS = [
    "SELECT nextval('agape_seq')",
    "SELECT setval('agape_seq', 100)",
    "SELECT set_config('search_path', 'pg_catalog', false)",
    "SELECT pg_advisory_lock(42)",
    "SELECT pg_try_advisory_lock(42)",
    "SELECT pg_advisory_lock_shared(42)",
    "SELECT pg_advisory_xact_lock(42)",
    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
    "SELECT pg_reload_conf()",
    "SELECT lo_create(0)",
    "SELECT lo_import('/etc/hostname')",
    "SELECT lo_export(0, '/tmp/agape-loot')",
    "SELECT lo_from_bytea(0, 'x')",
    "SELECT pg_read_file('/etc/hostname')",
    "SELECT pg_ls_dir('.')",
    "SELECT * FROM dblink('dbname=postgres', 'DELETE FROM orders') AS t(x int)",
    "SELECT pg_notify('agape', 'x')",
    "SELECT txid_current()",
    "SELECT pg_current_xact_id()",
    "SELECT pg_stat_reset()",
    "SELECT query_to_xml('UPDATE product_variants SET stock = 9 RETURNING 1', false, false, '')",
    # the same, hidden where a careless reader would not look
    "SELECT sku FROM product_variants ORDER BY pg_advisory_lock(1)",
    "SELECT (SELECT pg_catalog.pg_advisory_lock(1)) AS x",
    "SELECT * FROM ROWS FROM (pg_advisory_lock(1)) AS t",
    'WITH x AS (SELECT "pg_advisory_lock"(1)) SELECT * FROM x',
    "SELECT CASE WHEN stock < 0 THEN PG_ADVISORY_LOCK(1) END FROM product_variants",
    "SELECT * FROM product_variants, LATERAL (SELECT lo_create(0)) AS l",
    # writes, row locks and tables a read must not make
    "WITH d AS (UPDATE product_variants SET stock = 7 RETURNING 1) SELECT count(*) FROM d",
    "WITH d AS (DELETE FROM sessions RETURNING 1) SELECT count(*) FROM d",
    "WITH d AS (INSERT INTO products (name) VALUES ('x') RETURNING 1) SELECT * FROM d",
    "SELECT sku INTO loot FROM product_variants",
    "SELECT sku INTO TEMP loot FROM product_variants",
    "SELECT sku FROM product_variants FOR UPDATE",
    "SELECT sku FROM product_variants FOR NO KEY UPDATE",
    "SELECT sku FROM product_variants FOR SHARE",
    "SELECT sku FROM product_variants FOR KEY SHARE",
]


async def test_read_that_changes_anything_beyond_reading_is_refused_before_it_runs(
    adapter: PostgresAdapter, world: Conn
) -> None:
    await refused_and_unchanged(adapter, world, [request(sql) for sql in SIDE_EFFECTS])


ESCAPES = [
    "SELECT 1; SELECT 2",
    "SELECT 1; UPDATE product_variants SET stock = 1 WHERE true",
    "SELECT 1 /* a comment */; UPDATE product_variants SET stock = 1 WHERE true",
    "SELECT 1; COMMIT; UPDATE product_variants SET stock = 1 WHERE true",
    "COMMIT",
    "ROLLBACK",
    "BEGIN",
    "SAVEPOINT s",
    "SET SESSION work_mem = '77MB'",
    "SET TRANSACTION READ WRITE",
    "SET ROLE postgres",
    "RESET ALL",
    "LISTEN agape",
    "NOTIFY agape",
    "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
    "PREPARE p AS SELECT 1",
    "CHECKPOINT",
    "LOCK TABLE product_variants IN ACCESS SHARE MODE",
    "EXPLAIN ANALYZE DELETE FROM sessions",
    "SHOW work_mem",
    "DISCARD ALL",
    "LOAD 'auto_explain'",
    "DO $$ BEGIN PERFORM 1; END $$",
    "COPY product_variants TO STDOUT",
    "TRUNCATE sessions",
]


async def test_read_step_runs_one_plain_select_and_nothing_else(
    adapter: PostgresAdapter, world: Conn
) -> None:
    requests = [request(sql) for sql in ESCAPES]
    requests.append(request("SELECT %(a)s; DELETE FROM sessions WHERE true", params={"a": 1}))
    await refused_and_unchanged(adapter, world, requests)
    with pytest.raises(UnsafeOperation, match="read step tried to write: it runs an UPDATE"):
        await adapter.execute(request("UPDATE product_variants SET stock = 0 WHERE stock < 0"))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 AS one -- ; DELETE FROM sessions",
        "SELECT 1 AS one /* ; DELETE FROM sessions */",
        "SELECT 1 AS one /* nested /* */ ; DELETE FROM sessions; */",
    ],
)
async def test_a_second_statement_inside_a_comment_stays_a_comment(
    adapter: PostgresAdapter, world: Conn, sql: str
) -> None:
    before = await snapshot(world)
    result = await adapter.execute(request(sql))
    assert result.rows == [{"one": 1}]
    assert await snapshot(world) == before


async def test_the_server_itself_refuses_a_second_statement_in_a_read(
    pool: AsyncConnectionPool, world: Conn
) -> None:
    """Rows are read through a server-side cursor, which takes exactly one query."""
    sessions = Sessions(pool, Location(""), statement_timeout_ms=1000, lock_timeout_ms=300)
    before = await snapshot(world)
    with pytest.raises(AdapterResponseError, match="cannot insert multiple commands"):
        async with sessions.transaction("probe", timeout_ms=1000, read_only=False) as conn:
            await fetch(conn, "SELECT 1; DELETE FROM sessions WHERE true", None, 5)
    assert await snapshot(world) == before


async def test_a_string_reads_as_checked_even_where_backslashes_escape_quotes(
    backend_db: str, world: Conn
) -> None:
    """With standard_conforming_strings off, 'a\\' would end later and run the lock."""
    name = conninfo_to_dict(backend_db)["dbname"]
    await world.execute(f'ALTER DATABASE "{name}" SET standard_conforming_strings = off')
    cur = await world.execute("SELECT 1")  # the setting reaches only new sessions
    assert await cur.fetchone() == (1,)
    opened = await open_pool(backend_db, max_size=1)
    try:
        result = await PostgresAdapter(opened).execute(
            request("SELECT 'a\\' || ', pg_advisory_lock(1) AS y --' AS x")
        )
    finally:
        await opened.close()
    assert result.columns == ["x"]
    assert result.rows == [{"x": "a\\, pg_advisory_lock(1) AS y --"}]


async def test_a_huge_result_is_counted_on_the_server_and_only_limit_rows_are_fetched(
    pool: AsyncConnectionPool,
) -> None:
    # A generous statement timeout: this proves where rows are counted, not how fast a busy
    # CI machine sorts them.
    adapter = PostgresAdapter(pool, statement_timeout_ms=20_000, lock_timeout_ms=300)
    result = await adapter.execute(
        request("SELECT g FROM generate_series(1, 2000000) AS g ORDER BY g", limit=3)
    )
    assert result.total_rows == 2_000_000
    assert result.rows == [{"g": 1}, {"g": 2}, {"g": 3}]
    assert result.summary == "2000000 rows (first 3 shown)"
    cursors = await adapter.execute(request("SELECT name, statement FROM pg_cursors"))
    assert cursors.rows[0]["name"] == "agape_ops_rows"
    assert cursors.rows[0]["statement"].startswith('DECLARE "agape_ops_rows" CURSOR FOR')


async def test_parameter_values_carrying_sql_stay_values(
    adapter: PostgresAdapter, world: Conn
) -> None:
    before = await snapshot(world)
    hostile = "x'); DELETE FROM sessions; SELECT pg_advisory_lock(1); --"
    read = await adapter.execute(request("SELECT %(v)s AS v", params={"v": hostile}))
    assert read.rows == [{"v": hostile}]
    changed = await adapter.execute(
        write(
            "UPDATE product_variants SET stock = 0 WHERE sku = %(sku)s",
            params={"sku": "S0' OR '1'='1"},
            max_rows=1,
        )
    )
    assert changed.values["rows_changed"] == 0
    assert await snapshot(world) == before


# --- timeouts and locks ------------------------------------------------------------------------


async def test_a_read_waiting_for_a_locked_table_gives_up_at_the_lock_timeout(
    adapter: PostgresAdapter, backend_db: str, world: Conn, pool: AsyncConnectionPool
) -> None:
    clean = await session_of(pool)
    async with await psycopg.AsyncConnection.connect(backend_db) as holder:
        await holder.execute("LOCK TABLE product_variants IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(AdapterTimeout, match="300 ms lock timeout"):
            await adapter.execute(request("SELECT count(*) AS n FROM product_variants"))
        assert time.monotonic() - started < 2
        await holder.rollback()
    assert await session_of(pool) == clean


def test_a_step_cannot_raise_its_statement_timeout_past_the_ceiling() -> None:
    adapter = PostgresAdapter(None, statement_timeout_ms=5000)
    assert "statement timeout 60000 ms" in adapter.describe(request("SELECT 1", timeout_ms=10**8))
    assert "statement timeout 3000 ms" in adapter.describe(request("SELECT 1", timeout_ms=3000))


# --- writes ------------------------------------------------------------------------------------


async def test_write_that_changes_more_rows_than_its_preview_listed_is_rolled_back(
    adapter: PostgresAdapter, world: Conn
) -> None:
    before = await snapshot(world)
    with pytest.raises(UnsafeOperation, match="preview listed only 1, so it was rolled back"):
        await adapter.execute(
            write(
                "UPDATE product_variants SET stock = 0 WHERE stock < 0 RETURNING sku",
                preview="SELECT sku FROM product_variants WHERE sku = 'S0'",
                max_rows=10,
            )
        )
    assert await snapshot(world) == before


async def test_write_with_returning_and_a_join_changes_its_previewed_rows(
    adapter: PostgresAdapter, world: Conn
) -> None:
    result = await adapter.execute(
        write(
            "UPDATE product_variants pv SET stock = 0 FROM products p"
            " WHERE p.id = pv.product_id AND p.name = %(name)s AND pv.stock < 0"
            " RETURNING pv.sku",
            params={"name": "Dress"},
            max_rows=3,
        )
    )
    assert result.values == {"rows_changed": 3, "preview_count": 3}
    assert sorted(r["sku"] for r in result.rows) == ["S0", "S1", "S2"]
    assert (await snapshot(world))[0] == "S0=0,S1=0,S2=0,S3=5,S4=5"


async def test_insert_without_a_preview_is_rolled_back_past_max_rows(
    adapter: PostgresAdapter, world: Conn
) -> None:
    step = write(
        "INSERT INTO products (name) SELECT 'p' || g FROM generate_series(1, 3) AS g", max_rows=2
    )
    preview = await adapter.preview(step)
    assert preview is not None
    assert preview.values["preview_count"] is None
    assert preview.summary.startswith("no preview")
    with pytest.raises(UnsafeOperation, match="changed 3 rows, more than its limit of 2"):
        await adapter.execute(step)
    cur = await world.execute("SELECT count(*) FROM products")
    assert await cur.fetchone() == (1,)


async def test_write_step_runs_one_bounded_update_delete_or_insert_of_a_backend_table(
    adapter: PostgresAdapter, world: Conn, pool: AsyncConnectionPool
) -> None:
    clean = await session_of(pool)
    hostile = [
        write("UPDATE product_variants SET stock = 0", max_rows=10),
        write("DELETE FROM sessions", max_rows=10),
        write("UPDATE product_variants SET stock = 0 WHERE stock < 0"),  # no max_rows
        write("SELECT set_config('search_path', 'pg_catalog', false)", max_rows=1),
        write("SELECT pg_advisory_lock(45)", max_rows=1),
        write("LISTEN agape", max_rows=1),
        write("TRUNCATE sessions", max_rows=1),
        write("DO $$ BEGIN UPDATE product_variants SET stock = 14; END $$", max_rows=1),
        write("CREATE TABLE loot (x int)", max_rows=1),
        write("MERGE INTO sessions s USING users u ON s.user_id = u.id WHEN MATCHED THEN DELETE"),
        write("UPDATE pg_catalog.pg_database SET datallowconn = false WHERE true", max_rows=9),
        write("UPDATE pg_authid SET rolsuper = true WHERE rolname = 'x'", max_rows=1),
        write(
            "WITH gone AS (DELETE FROM sessions WHERE true RETURNING 1)"
            " UPDATE product_variants SET stock = 5 WHERE sku = 'S0'",
            max_rows=1,
        ),
        write(
            "UPDATE product_variants SET stock = stock WHERE sku = 'S4'"
            " AND set_config('work_mem', '79MB', false) IS NOT NULL",
            max_rows=1,
        ),
        write(
            "UPDATE product_variants SET stock = 0 WHERE sku = 'S4' AND nextval('agape_seq') > 0",
            max_rows=1,
        ),
        write(
            "UPDATE product_variants SET stock = 5 WHERE sku = 'S4'",
            preview="WITH d AS (UPDATE product_variants SET stock = 12 WHERE true RETURNING 1)"
            " SELECT * FROM d",
            max_rows=1,
        ),
        write(
            "UPDATE product_variants SET stock = 5 WHERE sku = 'S4'",
            preview="SELECT pg_advisory_lock(46)",
            max_rows=1,
        ),
        write("UPDATE product_variants SET stock = 5 WHERE sku = 'S4'", preview="SHOW work_mem"),
    ]
    await refused_and_unchanged(adapter, world, hostile)
    for each in hostile[-3:]:
        with pytest.raises(UnsafeOperation, match="nothing was run"):
            await adapter.preview(each)
    assert await session_of(pool) == clean


async def test_a_plain_with_clause_still_serves_a_write_and_its_preview(
    adapter: PostgresAdapter, world: Conn
) -> None:
    result = await adapter.execute(
        write(
            "WITH bad AS (SELECT id FROM product_variants WHERE stock < 0)"
            " UPDATE product_variants SET stock = 0 FROM bad WHERE product_variants.id = bad.id",
            max_rows=3,
        )
    )
    assert result.values == {"rows_changed": 3, "preview_count": 3}


# --- the pooled connection after every failure -------------------------------------------------

FAILURES = [
    (request("SELECT pg_sleep(5)"), AdapterTimeout),
    (request("SELECT nope FROM product_variants"), AdapterResponseError),
    (request("SELECT %(missing)s AS v", params={"other": 1}), AdapterResponseError),
    (request("SELECT 1/0 AS boom"), AdapterResponseError),
    (request("SELECT pg_advisory_lock(1)"), UnsafeOperation),
    (write("UPDATE product_variants SET stock = 0 WHERE stock < 0", max_rows=2), UnsafeOperation),
    (
        write(
            "UPDATE product_variants SET stock = 0 WHERE stock < 0",
            preview="SELECT 1 FROM product_variants WHERE sku = 'S0'",
            max_rows=2,
        ),
        UnsafeOperation,
    ),
    (write("UPDATE product_variants SET stock = 'x' WHERE stock < 0", max_rows=5), AdapterError),
]


async def test_every_failure_returns_the_connection_idle_and_as_it_was(
    adapter: PostgresAdapter, world: Conn, pool: AsyncConnectionPool
) -> None:
    clean = await session_of(pool)
    before = await snapshot(world)
    for each, error in FAILURES:
        with pytest.raises(error):
            await adapter.execute(each)
        assert await session_of(pool) == clean, each.call
        # The pool resets a returned connection (DISCARD ALL) in a task of its own: wait, with a
        # deadline, for it to be back and idle.
        assert await pooled_states(world) == [("idle",)], each.call
    assert await snapshot(world) == before


async def pooled_states(world: Conn, within_s: float = 5.0) -> list[tuple[Any, ...]]:
    """The pool's connections' states once none is active (or as they are at the deadline)."""
    deadline = time.monotonic() + within_s
    while True:
        cur = await world.execute(
            "SELECT state FROM pg_stat_activity"
            " WHERE application_name = 'agape-ops' AND datname = current_database()"
        )
        states = await cur.fetchall()
        if ("active",) not in states or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.01)


BACKEND_FUNCTIONS = """
CREATE FUNCTION take_lock() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_advisory_lock(7)';
CREATE FUNCTION sticky_path() RETURNS text LANGUAGE sql
    AS $$ SELECT set_config('search_path', 'pg_catalog', false) $$;
CREATE FUNCTION sneaky_write() RETURNS int LANGUAGE sql
    AS 'UPDATE product_variants SET stock = 99 WHERE true RETURNING 1';
CREATE FUNCTION make_writable() RETURNS text LANGUAGE sql
    AS $$ SELECT set_config('transaction_read_only', 'off', true) $$;
"""


async def test_functions_not_known_to_be_harmless_are_refused_before_they_run(
    adapter: PostgresAdapter, world: Conn, pool: AsyncConnectionPool
) -> None:
    """The backend's own functions, and SQL given as text, never reach the server."""
    await world.execute(BACKEND_FUNCTIONS)
    clean = await session_of(pool)
    before = await snapshot(world)
    cur = await world.execute("SELECT pg_backend_pid()")
    row = await cur.fetchone()
    assert row is not None
    victim = row[0]
    hostile = [
        "SELECT take_lock() AS locked",
        "SELECT sticky_path() AS path",
        "SELECT sneaky_write() AS n",
        "SELECT make_writable() AS rw",
        "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery"
        f" FROM pg_stat_activity WHERE pg_terminate_backend({victim})') AS q",
    ]
    for sql in hostile:
        with pytest.raises(UnsafeOperation, match="nothing was run"):
            await adapter.execute(request(sql))
    assert await snapshot(world) == before  # the other session is alive and nothing changed
    assert await session_of(pool) == clean
