"""The codec server for the Temporal UI and CLI: `POST /codec/encode` and `POST /codec/decode`.

Temporal's codec server protocol: the body in and out is the proto3 JSON of `Payloads`,
`{"payloads": [{"metadata": {"<name>": "<base64>"}, "data": "<base64>"}]}`; the UI calls
`<endpoint>/decode` with `Content-Type: application/json` and `X-Namespace`, so its endpoint is
`http://<host>:<port>/codec` (`temporal server start-dev --ui-codec-endpoint`, or the CLI's
`--codec-endpoint`). The UI's origins (`ORDERTRACK_CODEC_CORS_ORIGINS`) may call it from the
browser; with `ORDERTRACK_CODEC_AUTH_TOKEN` set, callers must send `Authorization: Bearer <token>`.
Without encryption keys there is nothing to decode: 404.

Nothing decrypts for strangers: the public port serves the codec only with a token configured;
without one `ordertrack serve` runs it on its own listener, `ORDERTRACK_CODEC_BIND` (loopback by
default, where a UI on the same host or an SSH tunnel reaches it).
"""

from fastapi import APIRouter, FastAPI, Request, Response
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from ordertrack.codec import EncryptionCodec, PayloadDecryptionError, payload_codec
from ordertrack.settings import Settings
from ordertrack.web import errors
from ordertrack.web.auth import require_bearer
from ordertrack.web.errors import ApiError

PREFIX = "/codec"
ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Namespace"]

router = APIRouter(prefix=PREFIX, tags=["codec"])


def _codec(request: Request) -> EncryptionCodec:
    settings: Settings = request.app.state.codec_settings
    codec = payload_codec(settings)
    if codec is None:
        raise ApiError(
            404, "codec_not_configured", "payload encryption is off (no ORDERTRACK_ENCRYPTION_KEYS)"
        )
    _authorize(request, settings)
    return codec


def _authorize(request: Request, settings: Settings) -> None:
    if settings.codec_auth_token is not None:
        require_bearer(request, settings.codec_auth_token, "codec", "CODEC_AUTH_TOKEN")


async def _payloads(request: Request) -> Payloads:
    body = await request.body()
    try:
        # Unknown fields ignored: the UI passes payloads on as the server's JSON API gave them.
        return json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
    except (ValueError, json_format.ParseError) as err:
        raise ApiError(
            422,
            "invalid_payloads",
            'the body must be {"payloads": [{"metadata": {"<name>": "<base64>"}, "data": "<base64>"}]}: '
            f"{err}",
        ) from None


def _answer(payloads: Payloads) -> Response:
    return Response(json_format.MessageToJson(payloads, indent=None), media_type="application/json")


@router.post("/encode", summary="Encrypt payloads (Temporal codec server)")
async def encode(request: Request) -> Response:
    codec = _codec(request)
    payloads = await _payloads(request)
    return _answer(Payloads(payloads=await codec.encode(payloads.payloads)))


@router.post("/decode", summary="Decrypt payloads (Temporal codec server)")
async def decode(request: Request) -> Response:
    codec = _codec(request)
    payloads = await _payloads(request)
    try:
        decoded = await codec.decode(payloads.payloads)
    except PayloadDecryptionError as err:
        raise ApiError(422, "undecryptable_payload", str(err)) from None
    return _answer(Payloads(payloads=decoded))


class CodecCors:
    """CORS for the codec paths only (the UI's origins); the rest of the app is not opened up."""

    def __init__(self, app: ASGIApp, *, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST", "OPTIONS"],
            allow_headers=ALLOWED_HEADERS,
            allow_credentials=True,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX + "/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the codec routes and their CORS to the public app, only when a token guards them (install
    after the API, so CORS answers preflights first)."""
    if settings.codec_auth_token is not None:
        _mount(app, settings)


def standalone_app(settings: Settings) -> FastAPI:
    """The codec alone, for its own listener (`ORDERTRACK_CODEC_BIND`)."""
    app = FastAPI(title="ordertrack codec", docs_url=None, redoc_url=None, openapi_url=None)
    errors.install(app)
    _mount(app, settings)
    return app


def placement(settings: Settings) -> str:
    """Where this server decodes payloads, said once at start-up."""
    if not settings.encryption_keys:
        return "codec server off: no ORDERTRACK_ENCRYPTION_KEYS"
    where = []
    if settings.codec_auth_token is not None:
        where.append(f"on the public port at {PREFIX}, behind ORDERTRACK_CODEC_AUTH_TOKEN")
    if settings.codec_bind:
        where.append(f"on http://{settings.codec_bind}{PREFIX} (ORDERTRACK_CODEC_BIND)")
    if not where:
        return "codec server off: no ORDERTRACK_CODEC_AUTH_TOKEN and ORDERTRACK_CODEC_BIND is empty"
    return "codec server " + " and ".join(where)


def _mount(app: FastAPI, settings: Settings) -> None:
    app.state.codec_settings = settings
    app.include_router(router)
    app.add_middleware(CodecCors, origins=list(settings.codec_cors_origins))
