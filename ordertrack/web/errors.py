"""One error shape for the whole API: `{"error": {"code", "message", "fields"?, "request_id"?}}`.

Every refusal the API makes, from 401 to 500, has a stable machine-readable `code` and a message a
person can act on. Validation errors (422) name each bad field, dotted (`customer.email`,
`items[0].quantity`). Responses never carry a stack trace: the catch-all in `ApiMiddleware`
(`ordertrack.web.middleware`) logs it under a request id and answers with that id only.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

API_PREFIXES = ("/api/", "/healthz", "/metrics")

# The stable code for each status when nothing more specific was said.
DEFAULT_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class FieldError(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str  # dotted path into the body (`customer.email`, `items[0].quantity`) or a parameter's name
    message: str
    type: str  # pydantic's error type, e.g. `missing`, `int_type`, `extra_forbidden`


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldError] | None = None
    request_id: str | None = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(StarletteHTTPException):
    """An error answered with the structured body; raise it anywhere in a request."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        fields: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, detail=message, headers=dict(headers) if headers else None)
        self.code = code
        self.message = message
        self.fields = list(fields) if fields is not None else None


def error_response(
    status_code: int,
    code: str,
    message: str,
    *,
    fields: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorDetail(
            code=code,
            message=message,
            fields=list(fields) if fields is not None else None,
            request_id=request_id,
        )
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status_code, headers=headers
    )


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: each listed status documented with the error body."""
    return {status: {"model": ErrorResponse, "description": DEFAULT_CODES[status]} for status in statuses}


def field_name(loc: Sequence[int | str]) -> str:
    """`("body", "items", 0, "quantity")` -> `items[0].quantity`; `("path", "order_id")` -> `order_id`."""
    parts = list(loc)
    if parts and parts[0] in ("body", "path", "query", "header", "cookie"):
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """Pydantic's errors as one entry per field and problem, in a person's words."""
    found: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for error in errors:
        name = field_name(error.get("loc", ()))
        kind = str(error.get("type", "value_error"))
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        if kind == "json_invalid":
            name, message = "body", f"not valid JSON: {error.get('ctx', {}).get('error', message)}"
        elif kind == "extra_forbidden":
            message = "unknown field: remove it"
        if (name, message) not in seen:
            seen.add((name, message))
            found.append(FieldError(field=name, message=message, type=kind))
    return found


def invalid_request(fields: Sequence[FieldError]) -> ApiError:
    names = ", ".join(dict.fromkeys(error.field for error in fields))
    return ApiError(422, "invalid_request", f"the request is not valid: {names}", fields=fields)


def refuse_unknown_filters(request: Request, filters: Iterable[str], others: Iterable[str] = ()) -> None:
    """422 naming each query parameter that is neither a filter nor one of `others`: a misspelt
    filter must not quietly widen what is read."""
    known = frozenset(filters)
    unknown = sorted(set(request.query_params) - known - set(others))
    if unknown:
        listed = ", ".join(sorted(known))
        raise invalid_request(
            [
                FieldError(field=name, message=f"unknown filter; known: {listed}", type="extra_forbidden")
                for name in unknown
            ]
        )


def is_api_path(request: Request) -> bool:
    path = request.url.path
    return any(path == prefix.rstrip("/") or path.startswith(prefix) for prefix in API_PREFIXES)


def request_id_of(request: Request) -> str | None:
    found = request.scope.get("state", {}).get("request_id")
    return str(found) if found else None


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.status_code,
        exc.code,
        exc.message,
        fields=exc.fields,
        headers=exc.headers,
        request_id=request_id_of(request) if exc.status_code >= 500 else None,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Framework errors (unknown route, wrong method, ...): structured under the API's paths."""
    assert isinstance(exc, StarletteHTTPException)
    if not is_api_path(request):
        return await http_exception_handler(request, exc)
    code = DEFAULT_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404:
        message = f"no such resource: {request.method} {request.url.path}"
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not is_api_path(request):
        return await request_validation_exception_handler(request, exc)
    error = invalid_request(field_errors(exc.errors()))
    return error_response(error.status_code, error.code, error.message, fields=error.fields)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
