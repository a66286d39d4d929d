"""One-click unsubscribe from marketing mail (`/unsubscribe/{token}`, the link in `List-Unsubscribe`).

A GET only shows a confirmation button: mail scanners and link previews follow links, and must not
unsubscribe anyone. A POST unsubscribes, whatever its body: mailbox providers send RFC 8058's
`List-Unsubscribe=One-Click` (form-encoded or multipart), and the page's own button posts the same.
It is idempotent, and honoured by the notify activity for every later order to that address.
Transactional mail (confirmation, shipping, delivery) is not affected.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from ordertrack.locales import negotiate, resolve_locale
from ordertrack.store.repository import Store
from ordertrack.web.deps import get_store
from ordertrack.web.pages import MAX_TOKEN_LENGTH, page, render

StoreDep = Annotated[Store, Depends(get_store)]


def _page(request: Request, state: str, status_code: int = 200) -> HTMLResponse:
    """`state`: `confirm` (with the button), `done` or `unknown`; in the language the email link
    names (`?lang=`, the customer's), else the browser's."""
    named = request.query_params.get("lang")
    lang = resolve_locale(named) if named else negotiate(request.headers.get("accept-language"))
    tone = {"confirm": "info", "done": "good"}.get(state, "muted")
    return page(render("unsubscribe.html", {"lang": lang, "state": state, "tone": tone}), status_code)


def _lookup(token: str) -> str:
    """Issued tokens are 32 characters; longer ones are not sent to the database (they match nothing)."""
    return token if len(token) <= MAX_TOKEN_LENGTH else ""


router = APIRouter(include_in_schema=False)


# `:path` so that a mangled link (a token with a slash) gets this same 404 page.
@router.get("/unsubscribe/{token:path}", response_class=HTMLResponse)
async def confirm_unsubscribe(token: str, request: Request, store: StoreDep) -> HTMLResponse:
    recipient = await store.get_mail_recipient(_lookup(token))
    if recipient is None:
        return _page(request, "unknown", 404)
    return _page(request, "done" if recipient.unsubscribed_at else "confirm")


@router.post("/unsubscribe/{token:path}", response_class=HTMLResponse)
async def unsubscribe(token: str, request: Request, store: StoreDep) -> HTMLResponse:
    if await store.unsubscribe(_lookup(token)) is None:
        return _page(request, "unknown", 404)
    return _page(request, "done")


def install(app: FastAPI) -> None:
    app.include_router(router)
