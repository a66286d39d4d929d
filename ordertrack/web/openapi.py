"""The OpenAPI document (`/openapi.json`, `/docs`) as the API behaves."""

from typing import Any

from fastapi import FastAPI

MONEY_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"  # documented; validation is the domain's


def _money_as_strings(node: Any) -> None:
    """Document money as what the API accepts: a decimal string (pydantic says number | string)."""
    if isinstance(node, dict):
        variants = node.get("anyOf")
        if (
            isinstance(variants, list)
            and len(variants) == 2
            and {variant.get("type") for variant in variants if isinstance(variant, dict)}
            == {"number", "string"}
        ):
            node.pop("anyOf")
            node.update(type="string", pattern=MONEY_PATTERN, examples=["39.90"])
        for value in node.values():
            _money_as_strings(value)
    elif isinstance(node, list):
        for value in node:
            _money_as_strings(value)


def install(app: FastAPI) -> None:
    """Serve the generated document with money as decimal strings."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _money_as_strings(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
