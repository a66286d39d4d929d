"""Strict JSON request bodies: `StrictBody(Model)` checks the raw body before FastAPI reads it.

FastAPI's own validation coerces (`"2"` -> 2) and lets duplicate keys, `NaN` and money as a JSON
number through; this refuses them (415 for a body not sent as JSON, 422 naming every bad field).
"""

import json
import re
import types
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from ordertrack.web import errors
from ordertrack.web.errors import ApiError, FieldError

_DECIMAL_STRING = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


class _JsonError(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _JsonError(f"duplicate key {key!r}")
        found[key] = value
    return found


def _no_constants(name: str) -> Any:
    raise _JsonError(f"{name} is not JSON")


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation may hold: `Annotated[X, ...] | None` -> [X, NoneType]."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [found for arg in get_args(annotation) for found in _unwrap(arg)]
    return [annotation]


def decimal_string_errors(
    model: type[BaseModel], data: Any, loc: tuple[int | str, ...] = ()
) -> list[FieldError]:
    """Money must arrive as a JSON string (`"39.90"`): a JSON number would be a binary float."""
    if not isinstance(data, dict):
        return []
    found: list[FieldError] = []
    for name, info in model.model_fields.items():
        if name in data:
            found += _value_decimal_errors(info.annotation, data[name], (*loc, name))
    return found


def _value_decimal_errors(annotation: Any, value: Any, loc: tuple[int | str, ...]) -> list[FieldError]:
    found: list[FieldError] = []
    for kind in _unwrap(annotation):
        if (
            kind is Decimal
            and value is not None
            and not (isinstance(value, str) and _DECIMAL_STRING.match(value))
        ):
            message = 'must be a decimal string like "39.90", not a JSON number'
            if isinstance(value, str):
                message = 'must be a plain decimal string like "39.90"'
            return [FieldError(field=errors.field_name(loc), message=message, type="decimal_string")]
        if get_origin(kind) in (list, tuple) and isinstance(value, list):
            (element, *_) = get_args(kind) or (Any,)
            for index, item in enumerate(value):
                found += _value_decimal_errors(element, item, (*loc, index))
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            found += decimal_string_errors(kind, value, loc)
    return found


def strict_body(model: type[BaseModel]) -> Callable[[Request], Awaitable[None]]:
    """A dependency that validates the raw body against `model` in strict JSON mode.

    FastAPI's own validation coerces (`"2"` -> 2); this one refuses, and reports every bad field.
    It is declared after the key's dependency, so an unauthenticated caller learns nothing more.
    """

    async def check(request: Request) -> None:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
            raise ApiError(
                415, "unsupported_media_type", "send the body as JSON, with Content-Type: application/json"
            )
        raw = await request.body()
        try:
            parsed = json.loads(raw, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError) as err:
            reason = str(err) if isinstance(err, _JsonError) else "not valid JSON"
            raise ApiError(
                422,
                "invalid_json",
                f"the body is not strict JSON: {reason}",
                fields=[FieldError(field="body", message=reason, type="json_invalid")],
            ) from None
        found = decimal_string_errors(model, parsed)
        try:
            model.model_validate_json(raw, strict=True)
        except ValidationError as err:
            bad = {error.field for error in found}
            found += [e for e in errors.field_errors(err.errors(include_url=False)) if e.field not in bad]
        if found:
            raise errors.invalid_request([_explain(error) for error in found])

    return check


def _explain(error: FieldError) -> FieldError:
    if error.field == "operator" and error.type == "extra_forbidden":
        return error.model_copy(
            update={"message": "unknown field: the operator is the API key's name, not part of the body"}
        )
    return error


def StrictBody(model: type[BaseModel]) -> Any:
    return Depends(strict_body(model))
