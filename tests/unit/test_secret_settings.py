"""Secrets from files (`ORDERTRACK_SECRETS_DIR`), and secrets that never show: not in `repr()`, not in
a validation error, not in the one line a process prints when a setting is wrong."""

import base64
import json
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError

from ordertrack.settings import SECRETS_DIR_VARIABLE, Settings, env_name
from ordertrack.startup import describe

# Every secret setting; each can come from a file named like its variable.
SECRET_FIELDS = [
    name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)
] + ["api_keys"]

KEY = base64.b64encode(bytes(range(32))).decode()
FILE_VALUES = {
    "smtp_password": "smtp-pw-from-file",
    "sms_auth_token": "sms-token-from-file",
    "easypost_api_key": "ep-key-from-file",
    "easypost_webhook_secret": "ep-whsec-from-file",
    "aftership_api_key": "as-key-from-file",
    "aftership_webhook_secret": "as-whsec-from-file",
    "shop_webhook_secret": "whsec_from_file",
    "temporal_api_key": "temporal-key-from-file",
    "codec_auth_token": "codec-token-from-file",
    "metrics_token": "metrics-token-from-file",
    "encryption_keys": json.dumps({"2026-11": KEY}),
    "api_keys": json.dumps({"shop-key-from-file": {"role": "shop", "name": "acme"}}),
}


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("ORDERTRACK_"):
            monkeypatch.delenv(name)


def write_secrets(directory: Path, values: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for field, value in values.items():
        (directory / env_name(field)).write_text(value + "\n")  # as `echo` or an editor leaves it
    return directory


def test_every_secret_setting_is_covered_here():
    assert set(SECRET_FIELDS) == set(FILE_VALUES)


def test_every_secret_setting_comes_from_a_file_named_like_its_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(write_secrets(tmp_path / "secrets", FILE_VALUES)))

    settings = Settings()

    for field in FILE_VALUES:
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            assert value.get_secret_value() == FILE_VALUES[field], field
    assert settings.encryption_key_bytes() == {"2026-11": bytes(range(32))}
    assert settings.encryption_key_id == "2026-11"
    assert settings.api_keys["shop-key-from-file"].name == "acme"


def test_a_variable_wins_over_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(write_secrets(tmp_path / "s", {"smtp_password": "file"})))
    monkeypatch.setenv("ORDERTRACK_SMTP_PASSWORD", "variable")
    assert Settings().smtp_password == SecretStr("variable")


def test_any_setting_may_come_from_a_file(tmp_path, monkeypatch):
    url = "postgresql+asyncpg://ordertrack:db-password@db/ordertrack"
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(write_secrets(tmp_path / "s", {"database_url": url})))
    assert Settings().database_url == url


def test_a_missing_secrets_directory_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(tmp_path / "absent"))
    with pytest.raises(SettingsError) as raised:
        Settings()
    assert describe(raised.value) == f"{SECRETS_DIR_VARIABLE}={tmp_path / 'absent'}: no such directory"


def test_repr_shows_no_secret():
    settings = Settings(
        **{
            field: json.loads(value) if field in {"api_keys", "encryption_keys"} else value
            for field, value in FILE_VALUES.items()
        },
        database_url="postgresql+asyncpg://ordertrack:db-password@db/ordertrack",
    )
    for text in (repr(settings), str(settings)):
        for field, value in FILE_VALUES.items():
            assert value not in text, field
        assert "shop-key-from-file" not in text
        assert KEY not in text
        assert "db-password" not in text
        assert "postgresql+asyncpg://ordertrack:***@db/ordertrack" in text
        assert "acme" in text  # who the keys belong to still shows


@pytest.mark.parametrize(
    ("variable", "secret"),
    [
        ("ORDERTRACK_ENCRYPTION_KEYS", '{"2026-11": "not-base64-S3CRET!"}'),
        (
            "ORDERTRACK_ENCRYPTION_KEYS",
            json.dumps({"2026-11": base64.b64encode(b"S3CRET-too-short").decode()}),
        ),
        ("ORDERTRACK_API_KEYS", '{"S3CRET-api-key": {"role": "admin", "name": "ops"}}'),
        ("ORDERTRACK_API_KEYS", '{"S3CRET-api-key": "shop"}'),
        ("ORDERTRACK_API_KEYS", '{"S3CRET-api-key": {"role": "shop", "name": "acme"'),  # not JSON
        ("ORDERTRACK_CODEC_CORS_ORIGINS", "S3CRET-not-json"),
    ],
)
def test_a_bad_value_never_shows_in_the_error(monkeypatch, variable, secret):
    monkeypatch.setenv(variable, secret)
    with pytest.raises((ValidationError, SettingsError)) as raised:
        Settings()
    line = describe(raised.value)
    assert line is not None and variable in line
    for text in (str(raised.value), repr(raised.value), line):
        assert "S3CRET" not in text
        assert secret not in text


def test_an_api_keys_error_names_the_entry_not_the_key(monkeypatch):
    monkeypatch.setenv(
        "ORDERTRACK_API_KEYS",
        json.dumps({"k-one": {"role": "shop", "name": "acme"}, "k-two": {"role": "boss", "name": "ops"}}),
    )
    with pytest.raises(ValidationError) as raised:
        Settings()
    line = describe(raised.value)
    assert line is not None
    assert (
        "ORDERTRACK_API_KEYS: API_KEYS: entry 2 (name 'ops'): role: Input should be 'shop' or 'operator'"
        in line
    )
    assert "k-two" not in line and "k-two" not in str(raised.value)


def test_a_bad_setting_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("ORDERTRACK_SMTP_PORT", "twenty-five")
    monkeypatch.setenv("ORDERTRACK_WORKER_HEALTH_BIND", "8081")
    with pytest.raises(ValidationError) as raised:
        Settings()
    line = describe(raised.value)
    assert line is not None and "\n" not in line
    assert "ORDERTRACK_SMTP_PORT: Input should be a valid integer" in line
    assert "ORDERTRACK_WORKER_HEALTH_BIND: WORKER_HEALTH_BIND must look like 0.0.0.0:8081" in line
