"""Settings: one class, every variable documented in .env.example, secrets found for redaction."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from agape_ops.cli.startup import settings_problem
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


# --- settings as shipped (issue 9) ---------------------------------------------------------------


@pytest.fixture
def shipped(bare_folder: Path) -> Path:
    """Work in a folder whose .env is .env.example as shipped, with no agape variables set."""
    (bare_folder / ".env").write_text((ROOT / ".env.example").read_text())
    return bare_folder


def test_env_example_copied_to_env_loads_and_configures_no_backend(shipped: Path) -> None:
    settings = Settings()

    assert settings.ops_database_url is None  # shipped empty: "a SQLite file", not an error
    assert settings.database_url is None
    assert settings.paystack_secret_key is None
    assert settings.admin_api_url is None
    assert not settings.backend_configured()
    assert settings.ops_store_url().endswith("/agape-ops/agape-ops.db")


def test_an_empty_value_in_the_environment_means_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_DATABASE_URL", "")
    monkeypatch.setenv("PAYSTACK_SECRET_KEY", "")
    monkeypatch.setenv("ADMIN_API_URL", "")

    settings = Settings(_env_file=None)

    assert settings.ops_database_url is None
    assert settings.paystack_secret_key is None
    assert settings.admin_api_url is None


def test_the_default_store_lives_in_the_users_data_folder_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))

    url = Settings(_env_file=None).ops_store_url()

    assert url == f"sqlite+aiosqlite:///{tmp_path}/data/agape-ops/agape-ops.db"


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("DATABASE_URL", "not-a-url", "DATABASE_URL is not a PostgreSQL URL; e.g. postgresql://"),
        ("DATABASE_URL", "mysql://u:pw@db/agape", "DATABASE_URL is not a PostgreSQL URL"),
        ("DATABASE_URL", "postgresql://u@<DB-HOST>:5432/agape", "still holds a placeholder"),
        ("DATABASE_URL", "postgresql://u:pw@db:99999999/agape", "is not a PostgreSQL URL"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL is not a Redis URL; e.g. redis://"),
        ("OPS_DATABASE_URL", "agape-ops.db", "OPS_DATABASE_URL is not a PostgreSQL or SQLite URL"),
        ("ADMIN_API_URL", "api.agape.test", "ADMIN_API_URL is not an http(s) URL"),
        ("ADMIN_API_URL", "https://api.agape.test/api/v1", "is an origin (scheme://host:port"),
        ("PROMETHEUS_URL", "ftp://prom.test:9090", "PROMETHEUS_URL is not an http(s) URL"),
        ("OPS_LOG_LEVEL", "LOUD", "OPS_LOG_LEVEL is not a log level"),
    ],
)
def test_malformed_urls_are_refused_naming_the_setting_and_an_example_never_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)

    message = settings_problem(caught.value)
    assert said in message
    assert "pw" not in message
    assert value not in message


def test_log_level_and_runbooks_dir_are_read_under_their_ops_names_and_the_old_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("OPS_RUNBOOKS_DIR", "/srv/runbooks")
    settings = Settings(_env_file=None)
    assert settings.ops_log_level == "DEBUG"
    assert settings.runbooks_dir == Path("/srv/runbooks")

    monkeypatch.setenv("OPS_LOG_LEVEL", "error")
    assert Settings(_env_file=None).ops_log_level == "ERROR"


def test_example_values_in_env_example_are_visibly_placeholders() -> None:
    text = (ROOT / ".env.example").read_text()
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.MULTILINE))
    # Nothing points at a made-up host that looks real: backend addresses ship empty, and the
    # examples in the comments name what to replace in capitals.
    for name in ("DATABASE_URL", "REDIS_URL", "ADMIN_API_URL", "PROMETHEUS_URL"):
        assert values[name] == "", name
    assert "DB-HOST" in text
    assert "internal" not in text
