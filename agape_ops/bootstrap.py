"""The composition root: the one place that builds clients, adapters, the store and the engine.

Nothing else constructs a client or reads settings into one. Every adapter is wrapped in the
redactor, so no configured secret leaves through a result, an error or a log line; the engine
gets the same redactor, and teaches it the secret inputs people give.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from agape_ops.adapters.admin_api import AdminApiAdapter
from agape_ops.adapters.http import HttpAdapter
from agape_ops.adapters.httpclient import open_http_client
from agape_ops.adapters.paystack import PaystackAdapter
from agape_ops.adapters.pgrequirements import Requirements
from agape_ops.adapters.postgres import PostgresAdapter, open_pool
from agape_ops.adapters.prometheus import PrometheusAdapter
from agape_ops.adapters.redacting import RedactingAdapter
from agape_ops.adapters.redis import RedisAdapter, open_client
from agape_ops.adapters.shell import ShellAdapter
from agape_ops.engine.engine import Engine
from agape_ops.engine.handlers import default_handlers
from agape_ops.engine.permissions import Permissions
from agape_ops.engine.ports import Adapter
from agape_ops.errors import ConfigError, RunbookError
from agape_ops.redaction import RedactingFilter, Redactor
from agape_ops.runbooks.catalog import Catalog, load_catalog
from agape_ops.runbooks.loader import load_team_file
from agape_ops.runbooks.team import Team
from agape_ops.scheduler.service import SchedulerService
from agape_ops.settings import Settings, default_store_file
from agape_ops.store import SqlStore, open_store

DEFAULT_TEAM_FILE = Path("team.yaml")


@dataclass
class Container:
    """Everything a surface needs, built from settings; ``aclose()`` releases it all."""

    settings: Settings
    catalog: Catalog
    team: Team
    redactor: Redactor
    adapters: dict[str, Adapter]
    store: SqlStore
    engine: Engine
    scheduler: SchedulerService
    _exit: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def aclose(self) -> None:
        await self._exit.aclose()


def load_team(settings: Settings) -> Team:
    """Load the team file (``OPS_TEAM_FILE``, else ./team.yaml when present, else empty)."""
    path = settings.ops_team_file or (DEFAULT_TEAM_FILE if DEFAULT_TEAM_FILE.exists() else None)
    if path is None:
        return Team()
    if not path.exists():
        raise ConfigError(
            f"the team file {path.absolute()} does not exist (OPS_TEAM_FILE names it, relative "
            f"to the directory agape-ops starts in, {Path.cwd()}); leave it empty for none"
        )
    try:
        return load_team_file(path)
    except RunbookError as exc:
        raise ConfigError(f"team file {path} is invalid:\n{exc.message}") from exc


def permissions_for(settings: Settings, team: Team) -> Permissions:
    """Combine the environment's responders and approvers with the team file's."""
    return Permissions.of(
        [*settings.ops_responders, *team.responders],
        [*settings.ops_approvers, *team.approvers],
    )


def settings_context(settings: Settings) -> dict[str, str | None]:
    """Return the settings templates may read: public URLs only, never a secret."""
    return {
        "admin_api_url": settings.admin_api_url,
        "paystack_api_url": settings.paystack_api_url,
        "paystack_status_url": settings.paystack_status_url,
    }


class OneLineFormatter(logging.Formatter):
    """Write each record as one line (level, logger, message); tracebacks only when debugging.

    A fault is one line a person reads above a table or a prompt; ``--verbose`` (DEBUG) brings
    back the timestamps and the tracebacks a developer wants.
    """

    def __init__(self, *, verbose: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose else None)
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        if self.verbose:
            return super().format(record)
        text = " ".join(record.getMessage().split())
        if record.exc_info and record.exc_info[0] is not None:
            text += f" ({record.exc_info[0].__name__})"
        return f"{record.levelname.lower()}: {record.name}: {text}"


#: Libraries whose own log lines repeat what the adapters already report, in their words.
_CHATTY = {
    "psycopg.pool": logging.CRITICAL,
    "psycopg": logging.ERROR,
    "httpx": logging.WARNING,
    # "Running job ..." twice a job at INFO: the timeline says what a job did.
    "apscheduler": logging.WARNING,
}


def configure_logging(settings: Settings, redactor: Redactor) -> None:
    """Send logs to stderr through the redactor, one line per fault, at the chosen level."""
    verbose = settings.ops_log_level == "DEBUG"
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter(redactor))
    handler.setFormatter(OneLineFormatter(verbose=verbose))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.ops_log_level)
    for name, level in _CHATTY.items():
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else level)


def load_catalog_from(settings: Settings) -> Catalog:
    """Load the runbooks folder; say where it looked when there is none to load."""
    folder = settings.runbooks_dir
    if not folder.is_dir():
        logging.getLogger("agape_ops.runbooks").warning(
            "no runbooks loaded: %s does not exist (RUNBOOKS_DIR or OPS_RUNBOOKS_DIR names the "
            "folder, relative to the directory agape-ops starts in, %s)",
            folder.absolute(),
            Path.cwd(),
        )
        return Catalog()
    return load_catalog([folder])


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if callable(getter) else None


async def build_adapters(
    settings: Settings,
    exit_stack: AsyncExitStack,
    http: httpx.AsyncClient,
    catalog: Catalog | None = None,
) -> dict[str, Adapter]:
    """Build one adapter per external system; unconfigured ones explain what to set."""
    pool = None
    catalog = catalog or Catalog()
    if settings.database_url is not None:
        pool = await open_pool(
            settings.database_url.get_secret_value(),
            connect_timeout_s=settings.ops_connect_timeout_s,
        )
        exit_stack.push_async_callback(pool.close)
    redis_client = None
    if settings.redis_url is not None:
        redis_client = open_client(
            settings.redis_url.get_secret_value(), timeout_s=settings.ops_connect_timeout_s
        )
        exit_stack.push_async_callback(redis_client.aclose)
    adapters: list[Adapter] = [
        PostgresAdapter(
            pool,
            statement_timeout_ms=settings.ops_statement_timeout_ms,
            requirements=Requirements.of(catalog.runbooks.values()),
            connect_timeout_s=settings.ops_connect_timeout_s,
        ),
        RedisAdapter(redis_client),
        PaystackAdapter(
            http,
            api_url=settings.paystack_api_url,
            status_url=settings.paystack_status_url,
            secret_key=_secret(settings.paystack_secret_key),
        ),
        AdminApiAdapter(http, base_url=settings.admin_api_url, token=_secret(settings.admin_token)),
        PrometheusAdapter(http, base_url=settings.prometheus_url),
        HttpAdapter(http, origins=settings_context(settings)),
        ShellAdapter(
            enabled=settings.ops_allow_shell,
            timeout_s=settings.ops_shell_timeout_s,
            env={"HOME": str(Path.home())},  # pm2 and docker-compose find their state there
        ),
    ]
    return {adapter.name: adapter for adapter in adapters}


async def build(settings: Settings | None = None, *, configure_logs: bool = True) -> Container:
    """Build the whole bot from settings. Raise ConfigError or StoreError with a clear message."""
    settings = settings or Settings()
    redactor = Redactor(settings.secrets())
    if configure_logs:
        configure_logging(settings, redactor)
    catalog = load_catalog_from(settings)
    for problem in catalog.problems:
        logging.getLogger("agape_ops.runbooks").error("runbook not loaded: %s", problem)
    team = load_team(settings)
    exit_stack = AsyncExitStack()
    try:
        http = open_http_client(settings.ops_http_timeout_s)
        exit_stack.push_async_callback(http.aclose)
        raw = await build_adapters(settings, exit_stack, http, catalog)
        adapters: dict[str, Adapter] = {
            name: RedactingAdapter(adapter, redactor) for name, adapter in raw.items()
        }
        if settings.ops_database_url is None:
            default_store_file().parent.mkdir(parents=True, exist_ok=True)
        store = await open_store(
            settings.ops_store_url(),
            run_prefix=settings.ops_run_prefix,
            connect_timeout_s=settings.ops_connect_timeout_s,
        )
        exit_stack.push_async_callback(store.close)
    except BaseException:
        await exit_stack.aclose()
        raise
    engine = Engine(
        runbooks=catalog.runbooks,
        store=store,
        adapters=adapters,
        permissions=permissions_for(settings, team),
        handlers=default_handlers(),
        team=team,
        settings_context=settings_context(settings),
        run_prefix=settings.ops_run_prefix,
        redactor=redactor,
        allow_shell=settings.ops_allow_shell,
    )
    # Every process reads the jobs (``Engine.jobs``); `serve` starts scheduling.
    scheduler = SchedulerService(engine, store.target, poll_s=settings.ops_scheduler_poll_s)
    exit_stack.push_async_callback(scheduler.close)
    return Container(
        settings=settings,
        catalog=catalog,
        team=team,
        redactor=redactor,
        adapters=adapters,
        store=store,
        engine=engine,
        scheduler=scheduler,
        _exit=exit_stack,
    )
