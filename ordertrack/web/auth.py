"""API keys: `Authorization: Bearer <key>` (or `X-API-Key: <key>`), each naming a role and a person.

`shop` keys start orders, read them and report fulfillment; `operator` keys may do all that and
also correct, cancel, change addresses and rotate tracking links, under the key's own `name` (the
audit trail's actor never comes from a request body). Keys are compared in constant time against
every configured key. Missing or unknown key: 401 with `WWW-Authenticate: Bearer`; a known key
without the role: 403.

The operators' pages (`/ops/...`) are opened in a browser, which cannot send a bearer header: there
the key comes as HTTP basic auth's password (any user name) or in the cookie their login form sets.
"""

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from ordertrack.settings import ApiKey
from ordertrack.web.deps import get_settings
from ordertrack.web.errors import ApiError

Role = Literal["shop", "operator"]

# What each role may do, by the role a route asks for.
GRANTS: dict[Role, frozenset[Role]] = {
    "shop": frozenset({"shop"}),
    "operator": frozenset({"shop", "operator"}),
}

# Declared for the OpenAPI schema (/docs "Authorize"); errors are ours, not FastAPI's.
bearer_scheme = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key, as a header")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name (the actor on the audit trail) and its role."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        return role in GRANTS[self.role]


def unauthenticated(code: str, message: str, *, invalid: bool) -> ApiError:
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return ApiError(401, code, message, headers={"WWW-Authenticate": challenge})


def find_key(presented: str, keys: dict[str, ApiKey]) -> ApiKey | None:
    """The configured key equal to `presented`; compares against every key, in constant time each."""
    wanted = presented.encode()
    found: ApiKey | None = None
    for key, entry in keys.items():
        if hmac.compare_digest(wanted, key.encode()):
            found = entry
    return found


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise unauthenticated(
                "invalid_authorization_header",
                "the Authorization header must be `Bearer <API key>`",
                invalid=True,
            )
        return credentials.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key is not None and key.strip() else None


OPERATOR_COOKIE = "ordertrack_operator_key"


def browser_key(request: Request) -> str | None:
    """The key an operator's browser presents: basic auth's password, else the login cookie."""
    scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return request.cookies.get(OPERATOR_COOKIE) or None


def browser_principal(request: Request) -> Principal | None:
    """Who the browser's key belongs to; None without a key or with one that is not configured."""
    presented = browser_key(request)
    entry = find_key(presented, get_settings(request).api_keys) if presented else None
    return Principal(name=entry.name, role=entry.role) if entry else None


def authenticate(request: Request) -> Principal:
    presented = presented_key(request)
    if presented is None:
        raise unauthenticated(
            "missing_api_key",
            "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            invalid=False,
        )
    entry = find_key(presented, get_settings(request).api_keys)
    if entry is None:
        raise unauthenticated("invalid_api_key", "the API key is not valid", invalid=True)
    return Principal(name=entry.name, role=entry.role)


def require(role: Role) -> Any:
    """A dependency giving the caller's Principal, refusing callers whose key lacks `role`."""

    async def dependency(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
        _api_key: Annotated[str | None, Security(api_key_scheme)],
    ) -> Principal:
        principal = authenticate(request)
        if not principal.may(role):
            raise ApiError(
                403,
                "insufficient_role",
                f"this API key has the {principal.role!r} role; "
                f"this request needs a key with the {role!r} role",
            )
        return principal

    return Security(dependency)


ShopCaller = Annotated[Principal, require("shop")]
OperatorCaller = Annotated[Principal, require("operator")]


def require_bearer(request: Request, secret: SecretStr, name: str, setting: str) -> None:
    """A shared-secret bearer token for a machine caller (the Temporal UI's codec calls, a Prometheus
    scrape), compared in constant time; 401 `missing_<name>_token` or `invalid_<name>_token`."""
    scheme, _, presented = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(
            401,
            f"missing_{name}_token",
            f"this needs `Authorization: Bearer <ORDERTRACK_{setting}>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(presented.strip().encode(), secret.get_secret_value().encode()):
        raise ApiError(
            401,
            f"invalid_{name}_token",
            f"the token is not the configured ORDERTRACK_{setting}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
