"""Settings: one class, every variable documented in .env.example, secrets found for redaction."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agape_ops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def documented_variables() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_every_setting_is_documented_in_env_example_and_nothing_else() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert documented_variables() == fields


def test_every_documented_variable_has_a_comment_above_it() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            assert lines[index - 1].startswith("#"), f"{line} has no comment"


def test_responders_and_approvers_are_comma_separated_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPS_RESPONDERS", "U1, U2,,")
    monkeypatch.setenv("OPS_APPROVERS", "U3")
    settings = Settings(_env_file=None)
    assert settings.ops_responders == ["U1", "U2"]
    assert settings.ops_approvers == ["U3"]


def test_origins_lose_trailing_slashes_and_slack_url_keeps_one() -> None:
    settings = Settings(
        _env_file=None,
        paystack_api_url="http://127.0.0.1:9000/",
        admin_api_url="http://127.0.0.1:9001/",
        slack_api_url="http://127.0.0.1:9002/api",
    )
    assert settings.paystack_api_url == "http://127.0.0.1:9000"
    assert settings.admin_api_url == "http://127.0.0.1:9001"
    assert settings.slack_api_url == "http://127.0.0.1:9002/api/"


def test_store_url_defaults_to_sqlite_and_maps_postgres_to_psycopg() -> None:
    assert Settings(_env_file=None).ops_store_url().startswith("sqlite+aiosqlite:///")
    pg = Settings(_env_file=None, ops_database_url="postgresql://ops:pw@db:5432/ops")
    assert pg.ops_store_url() == "postgresql+psycopg://ops:pw@db:5432/ops"


def test_secrets_include_tokens_keys_and_dsn_passwords() -> None:
    settings = Settings(
        _env_file=None,
        slack_bot_token="xoxb-123",
        paystack_secret_key="sk_test_abc",
        admin_token="admintok",
        database_url="postgresql://agape:s3cr%40t@db/agape",
        redis_url="redis://:redispw@cache:6379/0",
    )
    found = set(settings.secrets())
    assert {"xoxb-123", "sk_test_abc", "admintok", "redispw", "s3cr@t", "s3cr%40t"} <= found


def test_prometheus_url_is_an_origin_and_its_password_is_a_secret() -> None:
    settings = Settings(_env_file=None, prometheus_url="https://ops:pr0m-pw@prometheus:9090/")
    assert settings.prometheus_url == "https://ops:pr0m-pw@prometheus:9090"
    assert "pr0m-pw" in settings.secrets()
    assert Settings(_env_file=None).prometheus_url is None
