"""How to reach the Temporal server: address, namespace, TLS / mTLS or an API key, from settings.

`connect(settings)` is the one way every process (worker, HTTP server, CLI) gets its client;
`connect_options(settings)` turns the settings into the keyword arguments of `Client.connect`
(no network). With `ORDERTRACK_TEMPORAL_PROFILE` set, a Temporal environment-config profile
(`temporal.toml`, `TEMPORAL_CONFIG_FILE`, `TEMPORAL_*` variables; see `temporalio.envconfig`) is
loaded first, and every `ORDERTRACK_TEMPORAL_*` setting given explicitly overrides it.
"""

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from ordertrack.codec import data_converter
from ordertrack.settings import Settings

# Settings that switch TLS on by being set; each one overrides the same field of a profile.
_TLS_FILES = {
    "temporal_tls_server_ca": "server_root_ca_cert",
    "temporal_tls_client_cert": "client_cert",
    "temporal_tls_client_key": "client_private_key",
}


class ConnectionSettingsError(ConnectionError, ValueError):
    """The connection settings cannot work (a missing file, a cert without its key, a bad profile).

    A ConnectionError too, so the CLI reports it in one line like an unreachable server."""


class ConnectOptions(TypedDict, total=False):
    target_host: str
    namespace: str
    api_key: str | None
    tls: bool | TLSConfig
    rpc_metadata: Mapping[str, str]


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client for the configured server, with the payload codec; `runtime` carries SDK telemetry
    (metrics) when given."""
    return await Client.connect(
        **connect_options(settings),
        data_converter=data_converter(settings),
        runtime=runtime,
    )


def _env_name(field: str) -> str:
    return f"ORDERTRACK_{field.upper()}"


def _read(field: str, path: Path) -> bytes:
    try:
        return path.expanduser().read_bytes()
    except FileNotFoundError:
        raise ConnectionSettingsError(f"{_env_name(field)}: file not found: {path}") from None
    except OSError as err:
        raise ConnectionSettingsError(f"{_env_name(field)}: cannot read {path}: {err.strerror}") from None


def load_profile(name: str, env: Mapping[str, str] | None = None) -> ClientConnectConfig:
    """A Temporal env-config profile as `Client.connect` arguments (file and `TEMPORAL_*` variables)."""
    try:
        return ClientConfigProfile.load(profile=name, override_env_vars=env).to_client_connect_config()
    except FileNotFoundError as err:
        raise ConnectionSettingsError(f"ORDERTRACK_TEMPORAL_PROFILE={name}: {err}") from None
    except Exception as err:  # the SDK's ConfigError: no such profile, bad TOML, unreadable file
        raise ConnectionSettingsError(f"ORDERTRACK_TEMPORAL_PROFILE={name}: {err}") from None


def connect_options(settings: Settings, profile: ClientConnectConfig | None = None) -> ConnectOptions:
    """`Client.connect` keyword arguments for these settings; `profile` defaults to the one named by
    `ORDERTRACK_TEMPORAL_PROFILE` (none: settings only). Raises `ConnectionSettingsError`."""
    if profile is None and settings.temporal_profile:
        profile = load_profile(settings.temporal_profile)
    base: dict[str, Any] = dict(profile or {})
    given = settings.model_fields_set if profile else set(Settings.model_fields)

    options: ConnectOptions = {
        "target_host": settings.temporal_address
        if "temporal_address" in given or "target_host" not in base
        else base["target_host"],
        "namespace": settings.temporal_namespace
        if "temporal_namespace" in given or "namespace" not in base
        else base["namespace"],
    }
    if base.get("rpc_metadata"):
        options["rpc_metadata"] = base["rpc_metadata"]

    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    api_key = api_key or base.get("api_key")
    if api_key:
        options["api_key"] = api_key

    options["tls"] = _tls(settings, base.get("tls"), has_api_key=bool(api_key))
    return options


def _tls(settings: Settings, profile_tls: bool | TLSConfig | None, *, has_api_key: bool) -> bool | TLSConfig:
    """TLS off, on with the system roots (`True`), or a `TLSConfig` with a CA / mTLS pair / SNI name."""
    explicit_off = "temporal_tls" in settings.model_fields_set and not settings.temporal_tls
    files = {
        attr: _read(field, path)
        for field, attr in _TLS_FILES.items()
        if (path := getattr(settings, field)) is not None
    }
    if ("client_cert" in files) != ("client_private_key" in files):
        raise ConnectionSettingsError(
            "mTLS needs both ORDERTRACK_TEMPORAL_TLS_CLIENT_CERT and ORDERTRACK_TEMPORAL_TLS_CLIENT_KEY"
        )
    overrides: dict[str, Any] = dict(files)
    if settings.temporal_tls_server_name:
        overrides["domain"] = settings.temporal_tls_server_name

    if explicit_off:
        if overrides:
            raise ConnectionSettingsError(
                "ORDERTRACK_TEMPORAL_TLS=false, but TLS files or a server name are set; drop one or the other"
            )
        return False
    if overrides:
        start = profile_tls if isinstance(profile_tls, TLSConfig) else TLSConfig()
        return dataclasses.replace(start, **overrides)
    if isinstance(profile_tls, TLSConfig):
        return profile_tls
    if settings.temporal_tls:
        return True
    if profile_tls is not None:  # the profile said on or off
        return profile_tls
    return has_api_key  # Temporal Cloud with an API key: TLS with the system's roots
