"""Settings from the environment (prefix `ORDERTRACK_`), read once at the edges: worker, CLI, HTTP.

Any setting can also come from a file named like its variable in the directory named by
`ORDERTRACK_SECRETS_DIR` (e.g. `/run/secrets/ORDERTRACK_SMTP_PASSWORD`, as Docker and Kubernetes
mount secrets); a variable that is set wins over the file. Secrets never show: not in `repr()`,
not in validation errors (`hide_input_in_errors`, and `API_KEYS` errors name the entry, not the
key), not in the database URL's password.
"""

import base64
import binascii
import os
from datetime import time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ordertrack.domain.models import known_time_zone
from ordertrack.domain.policy import Duration, OptionalDuration, TimingPolicy
from ordertrack.names import TASK_QUEUE

VAR_DIR = Path("var")
ENV_PREFIX = "ORDERTRACK_"
SECRETS_DIR_VARIABLE = "ORDERTRACK_SECRETS_DIR"
ENCRYPTION_KEY_BYTES = 32  # AES-256
NEW_KEY_COMMAND = "python -c 'import os, base64; print(base64.b64encode(os.urandom(32)).decode())'"


class ApiKey(BaseModel):
    """What one API key may do: `shop` starts orders and reports fulfillment; `operator` also
    corrects, cancels, changes addresses and rotates tracking links, under its own name."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    role: Literal["shop", "operator"]
    name: Annotated[str, Field(min_length=1, max_length=100)]


def env_name(field: str) -> str:
    """The environment variable (and secret file name) of a settings field: `ORDERTRACK_SMTP_PORT`."""
    return f"{ENV_PREFIX}{field.upper()}"


def split_bind(value: str) -> tuple[str, int] | None:
    """`host:port` of a `*_BIND` setting as a pair (IPv6 without brackets); None if it is not one."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


def hide_password(database_url: str) -> str:
    """The database URL with its password masked, for logs and error messages."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


class Settings(BaseSettings):
    # hide_input_in_errors: a bad value never appears in a validation error (it may be a secret).
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", hide_input_in_errors=True)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = TASK_QUEUE

    database_url: str = f"sqlite+aiosqlite:///{VAR_DIR / 'ordertrack.db'}"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout: Annotated[float, Field(gt=0)] = 30.0
    # How the SMTP connection is secured; unset: implicit TLS on 465, STARTTLS on 587 or with
    # SMTP_STARTTLS, and plain text only to a local sink (see ordertrack/mail/smtp.py).
    smtp_tls: Literal["starttls", "implicit", "none"] | None = None
    smtp_ca_file: Path | None = None  # a private relay's CA bundle; default: the system's roots
    mail_from: str = "ordertrack <orders@localhost>"
    public_url: str = "http://127.0.0.1:8000"
    # Customer messages: the support contact on every message (default: MAIL_FROM's address); where
    # the review request points, with `{order_id}` filled in (default: the tracking page); the time
    # zone for quiet hours when an order gives none.
    support_email: str | None = None
    review_url: str | None = None
    default_time_zone: str = "UTC"
    # SMS through a Twilio-compatible HTTP API; texts are sent once all three credentials are set.
    sms_provider_url: str = "https://api.twilio.com"
    sms_account_sid: str | None = None
    sms_auth_token: SecretStr | None = None
    sms_from: str | None = None

    carrier: str = "simulated"
    simulated_carrier_url: str = "http://127.0.0.1:8010"
    simulated_carrier_speed: Annotated[float, Field(gt=0)] = 1.0

    # Real carriers (aggregators): each adapter is registered when its API key is set.
    easypost_base_url: str = "https://api.easypost.com"
    easypost_api_key: SecretStr | None = None
    easypost_webhook_secret: SecretStr | None = None
    aftership_base_url: str = "https://api.aftership.com/tracking/2024-10"
    aftership_api_key: SecretStr | None = None
    aftership_webhook_secret: SecretStr | None = None
    carrier_max_concurrent_calls: Annotated[int, Field(gt=0)] = 8  # per carrier, per worker

    payment_timeout: Duration = TimingPolicy().payment_timeout
    payment_reminder_before: OptionalDuration = TimingPolicy().payment_reminder_before
    ship_by: Duration = TimingPolicy().ship_by
    carrier_poll_interval: Duration = TimingPolicy().carrier_poll_interval
    carrier_poll_min: Duration | None = TimingPolicy().carrier_poll_min
    carrier_poll_max: Duration | None = TimingPolicy().carrier_poll_max
    stale_tracking_after: Duration = TimingPolicy().stale_tracking_after
    review_request_delay: Duration = TimingPolicy().review_request_delay
    estimate_slip: Duration = TimingPolicy().estimate_slip
    failed_attempt_follow_up: Duration = TimingPolicy().failed_attempt_follow_up
    review_without_delivery_after: Duration = TimingPolicy().review_without_delivery_after
    daytime_starts: time = TimingPolicy().daytime_starts
    daytime_ends: time = TimingPolicy().daytime_ends
    message_send_timeout: Duration = TimingPolicy().message_send_timeout
    activity_timeout: Duration = TimingPolicy().activity_timeout

    worker_shutdown_grace: Duration = timedelta(seconds=20)
    # `host:port` where `ordertrack worker` answers GET /healthz (200 once polling, 503 before) and
    # GET /livez; unset: no health endpoint.
    worker_health_bind: str | None = None
    # Whether `ordertrack worker` and `ordertrack serve` migrate the read model at start; false when
    # a deploy step runs `ordertrack db upgrade` once (the Kubernetes Job in deploy/k8s/).
    migrate_on_start: bool = True

    # Production connection, worker tuning and telemetry (see ordertrack/connection.py, telemetry.py).
    # TLS: on with the system's roots, or with a server CA, a client cert + key (mTLS), an SNI name.
    temporal_tls: bool = False
    temporal_tls_server_ca: Path | None = None
    temporal_tls_client_cert: Path | None = None
    temporal_tls_client_key: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None  # Temporal Cloud API key; implies TLS
    temporal_profile: str | None = None  # a temporal.toml profile; explicit settings override it
    worker_max_concurrent_activities: Annotated[int, Field(gt=0)] | None = None  # SDK default: 100
    worker_max_concurrent_workflow_tasks: Annotated[int, Field(gt=1)] | None = None  # SDK default: 100
    worker_max_cached_workflows: Annotated[int, Field(ge=0)] = 1000  # sticky cache; 0 turns it off
    metrics_bind: str | None = None  # e.g. 0.0.0.0:9464: the worker's SDK metrics for Prometheus
    otel_endpoint: str | None = None  # OTLP/HTTP collector, e.g. http://otel-collector:4318
    otel_service_name: str = "ordertrack-worker"

    # HTTP: JSON {"<key>": {"role": "shop" | "operator", "name": "<who>"}}; no keys, no API access.
    api_keys: dict[str, ApiKey] = {}
    shop_webhook_url: str | None = None
    shop_webhook_secret: SecretStr | None = None
    # Memory per server process for rendered tracking pages and API answers, kept until the order
    # changes (ordertrack.web.readcache); a page is about 7 KB. 0 keeps none.
    read_cache_mb: Annotated[float, Field(ge=0)] = 128

    # Payload encryption (ordertrack.codec): JSON {"<key id>": "<base64 of 32 bytes>"}; no keys, no
    # encryption. `encryption_key_id` encrypts; every listed key decrypts (rotation keeps old ones).
    encryption_keys: dict[str, SecretStr] = {}
    encryption_key_id: str | None = None
    # The codec server (`/codec/encode`, `/codec/decode`) for the Temporal UI: the UI's origins, and
    # a bearer token it must present when set.
    codec_cors_origins: list[str] = ["http://localhost:8233", "http://127.0.0.1:8233"]
    codec_auth_token: SecretStr | None = None
    # Nothing decrypts for strangers: the codec is on the public port only with a token; without one
    # `serve` puts it on its own listener, loopback by default (empty: none).
    codec_bind: str = "127.0.0.1:8234"
    # `GET /metrics` of the HTTP server: on its own listener (e.g. 0.0.0.0:9465, not routed by the
    # ingress), or on the public port behind `Authorization: Bearer <METRICS_TOKEN>`; neither: off.
    http_metrics_bind: str | None = None
    metrics_token: SecretStr | None = None
    # Behind a reverse proxy: the proxies' addresses (comma list, or *) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed, so the lookup form's rate limit counts the real client.
    forwarded_allow_ips: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Secret files from `ORDERTRACK_SECRETS_DIR` unless a directory was given (`_secrets_dir`)."""
        directory = os.environ.get(SECRETS_DIR_VARIABLE)
        if directory and getattr(file_secret_settings, "secrets_dir", None) is None:
            if not Path(directory).is_dir():
                raise SettingsError(f"{SECRETS_DIR_VARIABLE}={directory}: no such directory")
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=directory)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    def __repr_args__(self) -> Any:
        """Like pydantic's, with the API keys (which are secrets) and the database password hidden."""
        for name, value in super().__repr_args__():
            if name == "api_keys":
                yield name, {f"<key {n}>": entry for n, entry in enumerate(value.values(), start=1)}
            elif name == "database_url":
                yield name, hide_password(value)
            else:
                yield name, value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_keys_without_the_keys(cls, value: Any) -> Any:
        """Each entry checked here, so an error names the entry by position and name, never its key
        (the key is the secret, and pydantic would put it in the error's location)."""
        if not isinstance(value, dict):
            return value
        checked: dict[str, ApiKey] = {}
        for number, (key, entry) in enumerate(value.items(), start=1):
            if not isinstance(key, str) or not key.strip():
                raise ValueError(f"API_KEYS: entry {number} has an empty key")
            try:
                checked[key] = entry if isinstance(entry, ApiKey) else ApiKey.model_validate(entry)
            except ValidationError as err:
                name = entry.get("name") if isinstance(entry, dict) else None
                which = f"entry {number}" + (f" (name {name!r})" if isinstance(name, str) else "")
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in err.errors()
                )
                raise ValueError(
                    f'API_KEYS: {which}: {problems} (each is {{"role": "shop" | "operator", "name": "..."}})'
                ) from None
        return checked

    @field_validator("worker_health_bind", "http_metrics_bind", "codec_bind")
    @classmethod
    def _binds(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and split_bind(value) is None:
            name = (info.field_name or "").upper()
            raise ValueError(f"{name} must look like 0.0.0.0:8081 (host:port), not {value!r}")
        return value

    @field_validator("default_time_zone")
    @classmethod
    def _known_time_zone(cls, name: str) -> str:
        if not known_time_zone(name):
            raise ValueError(f"DEFAULT_TIME_ZONE: {name!r} is not a known IANA time zone, e.g. Europe/Lisbon")
        return name

    @field_validator("encryption_keys")
    @classmethod
    def _valid_encryption_keys(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, secret in keys.items():
            if not key_id.strip():
                raise ValueError("ENCRYPTION_KEYS: a key id must not be empty")
            try:
                raw = base64.b64decode(secret.get_secret_value().strip(), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(
                    f"ENCRYPTION_KEYS: key {key_id!r} is not valid base64 (make one with: {NEW_KEY_COMMAND})"
                ) from None
            if len(raw) != ENCRYPTION_KEY_BYTES:
                raise ValueError(
                    f"ENCRYPTION_KEYS: key {key_id!r} is {len(raw)} bytes; "
                    f"AES-256 needs exactly {ENCRYPTION_KEY_BYTES} (base64 of 32 random bytes)"
                )
        return keys

    @model_validator(mode="after")
    def _valid_encryption_key_id(self) -> "Settings":
        keys = self.encryption_keys
        if self.encryption_key_id is None:
            if len(keys) > 1:
                raise ValueError(
                    f"ENCRYPTION_KEY_ID: required with several ENCRYPTION_KEYS; one of {sorted(keys)}"
                )
            if keys:
                self.encryption_key_id = next(iter(keys))
        elif self.encryption_key_id not in keys:
            raise ValueError(
                f"ENCRYPTION_KEY_ID: {self.encryption_key_id!r} is not one of ENCRYPTION_KEYS "
                f"({sorted(keys) if keys else 'none configured'})"
            )
        return self

    def encryption_key_bytes(self) -> dict[str, bytes]:
        """The decoded keys, by id (validated at load)."""
        return {
            key_id: base64.b64decode(secret.get_secret_value().strip())
            for key_id, secret in self.encryption_keys.items()
        }

    def timing_policy(self) -> TimingPolicy:
        """The policy fields of these settings, which each new order captures."""
        return TimingPolicy(**self.model_dump(include=set(TimingPolicy.model_fields)))


@lru_cache
def get_settings() -> Settings:
    return Settings()
