"""Every setting agape-ops reads, from the environment (and a `.env` file when present).

This is the only module that reads the environment. `.env.example` lists each variable with a
comment; keep the two in step (a unit test compares them). An empty value means "not set", so
`.env.example` copied as it is loads cleanly. URLs and DSNs are checked here, at start-up: a
malformed one is refused with the setting's name and an example, never its value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import SplitResult, unquote, urlsplit

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

APP_NAME = "agape-ops"

#: What a well-formed value of each URL setting looks like, for the messages that refuse one.
EXAMPLES = {
    "database_url": "postgresql://agape_ops:PASSWORD@db-host:5432/agape",
    "redis_url": "redis://redis-host:6379/0",
    "ops_database_url": "postgresql://agape_ops:PASSWORD@store-host:5432/agape_ops",
    "ops_demo_database_url": "postgresql://postgres@127.0.0.1:5432/agape_ops_demo",
    "ops_demo_redis_url": "redis://127.0.0.1:6379/15",
    "paystack_api_url": "https://api.paystack.co",
    "paystack_status_url": "https://status.paystack.com",
    "admin_api_url": "https://api.example.com",
    "prometheus_url": "http://prometheus-host:9090",
    "slack_api_url": "https://slack.com/api/",
}
_SCHEMES = {
    "database_url": ("postgresql", "postgres"),
    "ops_demo_database_url": ("postgresql", "postgres"),
    "redis_url": ("redis", "rediss", "unix"),
    "ops_demo_redis_url": ("redis", "rediss", "unix"),
    "ops_database_url": (
        "postgresql",
        "postgres",
        "postgresql+psycopg",
        "sqlite",
        "sqlite+aiosqlite",
    ),
}
_WHAT = {
    "database_url": "a PostgreSQL URL",
    "ops_demo_database_url": "a PostgreSQL URL",
    "redis_url": "a Redis URL",
    "ops_demo_redis_url": "a Redis URL",
    "ops_database_url": "a PostgreSQL or SQLite URL",
}
#: Settings that are origins: the bot appends the paths itself.
_ORIGINS = ("paystack_api_url", "admin_api_url", "prometheus_url")


def default_store_file() -> Path:
    """Return the bot's own SQLite store when OPS_DATABASE_URL is not set: the user's data dir."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / "agape-ops.db"


def _split_ids(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _split(field: str, text: str, what: str, schemes: tuple[str, ...]) -> SplitResult:
    """Split a URL setting; raise ValueError (naming no value) unless its scheme is one of
    ``schemes`` and it is well formed."""
    example = EXAMPLES[field]
    if "<" in text or ">" in text:
        raise ValueError(f"still holds a placeholder (<...>); put the real value, e.g. {example}")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a malformed port raises only when read
    except ValueError:
        raise ValueError(f"is not {what}; e.g. {example}") from None
    if parts.scheme not in schemes:
        raise ValueError(f"is not {what}; e.g. {example}")
    return parts


def check_dsn(field: str, text: str) -> None:
    """Raise ValueError (naming no value) unless ``text`` is a usable URL for ``field``."""
    parts = _split(field, text, _WHAT[field], _SCHEMES[field])
    needs_host = parts.scheme.startswith("redis") or parts.scheme.startswith("postgres")
    if needs_host and not (parts.hostname or "host=" in parts.query):
        raise ValueError(f"names no host; e.g. {EXAMPLES[field]}")


def check_http(field: str, text: str) -> str:
    """Return an HTTP(S) URL setting normalised; raise ValueError unless it is well formed."""
    example = EXAMPLES[field]
    parts = _split(field, text, "an http(s) URL", ("http", "https"))
    if not parts.hostname:
        raise ValueError(f"is not an http(s) URL; e.g. {example}")
    if field == "slack_api_url":
        return text if text.endswith("/") else text + "/"
    text = text.rstrip("/")
    if field in _ORIGINS and urlsplit(text).path:
        raise ValueError(
            f"is an origin (scheme://host:port, no path): the bot appends the paths; e.g. {example}"
        )
    return text


class Settings(BaseSettings):
    """The bot's configuration: Slack, the systems it operates, its own store and its team."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,  # `NAME=` in .env or the environment means "not set"
    )

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    alerts_channel: str | None = None
    port: int = 3000

    # The backend under operation
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    paystack_secret_key: SecretStr | None = None
    paystack_api_url: str = "https://api.paystack.co"
    paystack_status_url: str = "https://status.paystack.com"
    admin_api_url: str | None = None
    admin_token: SecretStr | None = None
    prometheus_url: str | None = None

    # The bot itself
    ops_database_url: SecretStr | None = None
    runbooks_dir: Path = Field(
        default=Path("runbooks"),
        validation_alias=AliasChoices("OPS_RUNBOOKS_DIR", "RUNBOOKS_DIR", "runbooks_dir"),
    )
    ops_team_file: Path | None = None
    ops_responders: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ops_approvers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ops_allow_shell: bool = False
    #: Run the scheduler (escalation, re-checks, monitors, reminders) in `serve`: of several
    #: processes on one store exactly one schedules, whichever holds the lease.
    ops_scheduler: bool = True
    #: How often (seconds) a process tries for the scheduler's lease, and its holder checks it
    #: still holds it: another process takes over at most this long after the holder dies.
    ops_scheduler_poll_s: float = Field(default=10.0, gt=0, le=60)
    ops_run_prefix: str = "INC"
    ops_log_level: str = Field(
        default="WARNING",
        validation_alias=AliasChoices("OPS_LOG_LEVEL", "LOG_LEVEL", "ops_log_level"),
    )

    # The demo world (`agape-ops demo`): a sandbox on local servers, never DATABASE_URL's
    ops_demo_database_url: SecretStr = SecretStr(EXAMPLES["ops_demo_database_url"])
    ops_demo_redis_url: str = EXAMPLES["ops_demo_redis_url"]

    # Bounds on every call the adapters make
    ops_statement_timeout_ms: int = Field(default=5000, gt=0)
    ops_connect_timeout_s: float = Field(default=3.0, gt=0)
    ops_http_timeout_s: float = Field(default=5.0, gt=0)
    ops_shell_timeout_s: float = Field(default=60.0, gt=0)

    @field_validator("ops_responders", "ops_approvers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_ids(value)

    @field_validator(
        "paystack_api_url",
        "paystack_status_url",
        "admin_api_url",
        "prometheus_url",
        "slack_api_url",
    )
    @classmethod
    def _http_urls(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return check_http(str(info.field_name), value.strip())

    @field_validator(
        "database_url", "redis_url", "ops_database_url", "ops_demo_database_url", mode="after"
    )
    @classmethod
    def _dsns(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None:
            check_dsn(str(info.field_name), value.get_secret_value().strip())
        return value

    @field_validator("ops_demo_redis_url")
    @classmethod
    def _demo_redis(cls, value: str) -> str:
        check_dsn("ops_demo_redis_url", value)
        return value

    @field_validator("ops_log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("is not a log level; use DEBUG, INFO, WARNING or ERROR")
        return level

    def backend_configured(self) -> bool:
        """Say whether any system under operation is configured (else `make run` demos)."""
        return any(
            value is not None
            for value in (
                self.database_url,
                self.redis_url,
                self.paystack_secret_key,
                self.admin_api_url,
                self.prometheus_url,
            )
        )

    def slack_configured(self) -> bool:
        """Say whether Slack is configured enough to serve it."""
        return self.slack_bot_token is not None and (
            self.slack_app_token is not None or self.slack_signing_secret is not None
        )

    def ops_store_url(self) -> str:
        """Return the SQLAlchemy URL of the bot's own store (a SQLite file by default)."""
        if self.ops_database_url is None:
            return f"sqlite+aiosqlite:///{default_store_file()}"
        url = self.ops_database_url.get_secret_value()
        for prefix, driver in (
            ("postgresql://", "postgresql+psycopg://"),
            ("postgres://", "postgresql+psycopg://"),
            ("sqlite:///", "sqlite+aiosqlite:///"),
        ):
            if url.startswith(prefix):
                return driver + url[len(prefix) :]
        return url

    def secrets(self) -> list[str]:
        """Return every configured secret value, for redaction everywhere output leaves the bot."""
        values = [
            self.slack_bot_token,
            self.slack_app_token,
            self.slack_signing_secret,
            self.paystack_secret_key,
            self.admin_token,
        ]
        found = [v.get_secret_value() for v in values if v is not None]
        for dsn in (
            self.database_url,
            self.redis_url,
            self.ops_database_url,
            self.ops_demo_database_url,
        ):
            if dsn is not None:
                found.extend(dsn_passwords(dsn.get_secret_value()))
        if self.prometheus_url is not None:  # basic auth of a proxy in front of Prometheus
            found.extend(dsn_passwords(self.prometheus_url))
        return [s for s in found if s]


def child_environment(overrides: dict[str, str]) -> dict[str, str]:
    """Return this process's environment with ``overrides``, for a child agape-ops process."""
    return {**os.environ, **overrides}


def setting_name(loc: tuple[Any, ...]) -> str:
    """Return the environment variable a pydantic error location names."""
    return ".".join(str(p) for p in loc).upper()


def dsn_passwords(dsn: str) -> list[str]:
    """Return the password in a DSN (``scheme://user:password@host``), if any."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return []
    password = parts.password
    if not password:
        return []
    return list({password, unquote(password)})
