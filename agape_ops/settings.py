"""Every setting agape-ops reads, from the environment (and a `.env` file when present).

This is the only module that reads the environment. `.env.example` lists each variable with a
comment; keep the two in step (a unit test compares them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_ids(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """The bot's configuration: Slack, the systems it operates, its own store and its team."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
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
    runbooks_dir: Path = Path("runbooks")
    ops_team_file: Path | None = None
    ops_responders: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ops_approvers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ops_allow_shell: bool = False
    ops_run_prefix: str = "INC"
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("LOG_LEVEL", "log_level"))

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
    def _no_trailing_slash_on_origins(cls, value: str | None, info: object) -> str | None:
        if value is None:
            return None
        field = getattr(info, "field_name", "")
        if field == "slack_api_url":
            return value if value.endswith("/") else value + "/"
        return value.rstrip("/")

    def ops_store_url(self) -> str:
        """Return the SQLAlchemy URL of the bot's own store (a SQLite file by default)."""
        if self.ops_database_url is None:
            return "sqlite+aiosqlite:///agape-ops.db"
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
        for dsn in (self.database_url, self.redis_url, self.ops_database_url):
            if dsn is not None:
                found.extend(dsn_passwords(dsn.get_secret_value()))
        if self.prometheus_url is not None:  # basic auth of a proxy in front of Prometheus
            found.extend(dsn_passwords(self.prometheus_url))
        return [s for s in found if s]


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
