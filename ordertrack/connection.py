"""How to reach the Temporal server: address, namespace, TLS / mTLS or an API key, from settings.

`connect(settings)` is the one way every process (worker, HTTP server, CLI) gets its client;
`connect_options(settings)` turns the settings into the keyword arguments of `Client.connect`
(no network). `connect_patiently(settings)` is for long-running processes that may start before
the server (a node reboot, a compose stack): it retries what may pass (nothing listening yet, a
name that does not resolve yet, a server still starting) with capped backoff, logging each attempt
once, and raises `ConnectionRefusedForGood` for what will not (TLS material the server does not
accept, credentials it refuses, a namespace it does not have).

With `ORDERTRACK_TEMPORAL_PROFILE` set, a Temporal environment-config profile (`temporal.toml`,
`TEMPORAL_CONFIG_FILE`, `TEMPORAL_*` variables; see `temporalio.envconfig`) is loaded first, and
every `ORDERTRACK_TEMPORAL_*` setting given explicitly overrides it.
"""

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypedDict

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

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


class ConnectionRefusedForGood(ConnectionSettingsError):
    """The server was reached but will not work with these settings however long we wait: TLS
    material it does not accept, credentials it refuses, a namespace it does not have."""


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


log = logging.getLogger("ordertrack.connection")

FIRST_RETRY_DELAY = 1.0  # seconds; doubles on each failed attempt ...
MAX_RETRY_DELAY = 30.0  # ... up to this

# gRPC status codes that say the server is there but refuses these settings for good.
_PERMANENT_CODES = {"Unauthenticated", "PermissionDenied", "NotFound", "InvalidArgument", "Unimplemented"}
_CODE_NAMES = {
    RPCStatusCode.UNAUTHENTICATED: "Unauthenticated",
    RPCStatusCode.PERMISSION_DENIED: "PermissionDenied",
    RPCStatusCode.NOT_FOUND: "NotFound",
    RPCStatusCode.INVALID_ARGUMENT: "InvalidArgument",
    RPCStatusCode.UNIMPLEMENTED: "Unimplemented",
}
_STATUS = re.compile(r'Status \{ code: (\w+), message: "((?:[^"\\]|\\.)*)"')
_CREDENTIALS_HINT = (
    "check ORDERTRACK_TEMPORAL_API_KEY or the client certificate "
    "(ORDERTRACK_TEMPORAL_TLS_CLIENT_CERT / _KEY) and the namespace's permissions"
)


@dataclasses.dataclass(frozen=True)
class ConnectFailure:
    """Why one attempt failed, in words, and whether waiting can help."""

    reason: str
    permanent: bool


def classify_connect_error(err: BaseException, settings: Settings) -> ConnectFailure:
    """Sort a failed `Client.connect` or namespace check into what may pass and what will not.

    The SDK reports a failed connect as a RuntimeError whose text carries the transport error or the
    gRPC status of the first call (`GetSystemInfo`); calls after it raise `RPCError`."""
    if isinstance(err, ConnectionSettingsError):
        return ConnectFailure(str(err), permanent=True)
    if isinstance(err, RPCError):
        code = _CODE_NAMES.get(err.status, err.status.name if err.status else "Unknown")
        return _status_failure(code, err.message, settings)
    text = str(err)
    if status := _STATUS.search(text):
        return _status_failure(status.group(1), status.group(2), settings)
    if certificate := re.search(r"InvalidCertificate\(([\w()]+)\)", text):
        why = re.findall(r"\w+", certificate.group(1))[-1]  # Other(OtherError(CaUsedAsEndEntity)): the last
        return ConnectFailure(
            f"TLS: the server's certificate is not trusted ({why}); check "
            "ORDERTRACK_TEMPORAL_TLS_SERVER_CA and ORDERTRACK_TEMPORAL_TLS_SERVER_NAME",
            permanent=True,
        )
    if "InvalidContentType" in text or "CorruptMessage" in text:
        return ConnectFailure(
            "TLS is on but the server did not answer in TLS (a plain-text server?); check the address "
            "and ORDERTRACK_TEMPORAL_TLS (an API key turns TLS on)",
            permanent=True,
        )
    if "PrivateKeyParseError" in text or ("Certificate" in text and "Parse" in text):
        return ConnectFailure(
            "TLS: the client certificate or key cannot be read as PEM; check "
            "ORDERTRACK_TEMPORAL_TLS_CLIENT_CERT and ORDERTRACK_TEMPORAL_TLS_CLIENT_KEY",
            permanent=True,
        )
    if "Connection refused" in text or "ConnectionRefused" in text:
        return ConnectFailure("connection refused (nothing listens there yet)", permanent=False)
    if "dns error" in text:
        return ConnectFailure("the host name does not resolve (yet)", permanent=False)
    if "timed out" in text.lower() or "Elapsed" in text:
        return ConnectFailure("timed out", permanent=False)
    return ConnectFailure(text.removeprefix("Failed client connect: ").strip() or type(err).__name__, False)


def _status_failure(code: str, message: str, settings: Settings) -> ConnectFailure:
    if code == "NotFound" and "amespace" in message:
        return ConnectFailure(
            f"namespace {settings.temporal_namespace!r} does not exist on the server ({message}); create "
            f"it (temporal operator namespace create --namespace {settings.temporal_namespace}) or set "
            "ORDERTRACK_TEMPORAL_NAMESPACE",
            permanent=True,
        )
    if code in {"Unauthenticated", "PermissionDenied"}:
        return ConnectFailure(
            f"the server refused the credentials ({code}: {message}); {_CREDENTIALS_HINT}", True
        )
    return ConnectFailure(f"the server answered {code}: {message}", permanent=code in _PERMANENT_CODES)


async def connect_patiently(
    settings: Settings,
    runtime: Runtime | None = None,
    *,
    stop: asyncio.Event | None = None,
    on_failure: Callable[[ConnectFailure, int], None] | None = None,
    first_delay: float = FIRST_RETRY_DELAY,
    max_delay: float = MAX_RETRY_DELAY,
) -> Client | None:
    """Connect and check the namespace, retrying failures that may pass with capped exponential
    backoff (1 s doubling to 30 s); each failed attempt is logged once with the address.

    Returns None if `stop` is set first; raises `ConnectionRefusedForGood` for a failure that
    waiting cannot fix, and `ConnectionSettingsError` for settings that cannot work at all."""
    options = connect_options(settings)  # a missing file or a bad profile fails here, at once
    address = options["target_host"]
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            client = await connect(settings, runtime)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=client.namespace)
            )
            if attempt > 1:
                log.info("connected to Temporal at %s (namespace %s)", address, client.namespace)
            return client
        except (RuntimeError, RPCError) as err:
            failure = classify_connect_error(err, settings)
        if on_failure is not None:
            on_failure(failure, attempt)
        if failure.permanent:
            raise ConnectionRefusedForGood(f"Temporal at {address}: {failure.reason}")
        log.warning(
            "Temporal at %s not available (attempt %d): %s; retrying in %g s",
            address,
            attempt,
            failure.reason,
            delay,
        )
        if stop is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return None
        delay = min(delay * 2, max_delay)


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
