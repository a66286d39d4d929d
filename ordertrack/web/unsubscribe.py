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

# Words for the page's three states, in each locale the tracking page speaks.
_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "confirm_title": "Unsubscribe from marketing email?",
        "confirm_text": "You will no longer get review requests at this address. "
        "Emails about your orders still arrive.",
        "button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done_text": "We will not send review requests to this address again. "
        "Emails about your orders still arrive.",
        "unknown_title": "Link not valid",
        "unknown_text": "This unsubscribe link is not valid. "
        "Use the link in the latest email you got from us.",
    },
    "pt-BR": {
        "confirm_title": "Cancelar e-mails de marketing?",
        "confirm_text": "Você não receberá mais pedidos de avaliação neste endereço. "
        "Os e-mails sobre seus pedidos continuam chegando.",
        "button": "Cancelar inscrição",
        "done_title": "Inscrição cancelada",
        "done_text": "Não enviaremos mais pedidos de avaliação para este endereço. "
        "Os e-mails sobre seus pedidos continuam chegando.",
        "unknown_title": "Link inválido",
        "unknown_text": "Este link de cancelamento não é válido. "
        "Use o link do e-mail mais recente que enviamos.",
    },
    "es": {
        "confirm_title": "¿Darte de baja de los correos de marketing?",
        "confirm_text": "Ya no recibirás solicitudes de reseña en esta dirección. "
        "Los correos sobre tus pedidos seguirán llegando.",
        "button": "Darme de baja",
        "done_title": "Te has dado de baja",
        "done_text": "No enviaremos más solicitudes de reseña a esta dirección. "
        "Los correos sobre tus pedidos seguirán llegando.",
        "unknown_title": "Enlace no válido",
        "unknown_text": "Este enlace para darte de baja no es válido. "
        "Usa el enlace del correo más reciente que te enviamos.",
    },
    "ca": {
        "confirm_title": "Vols donar-te de baixa dels correus de màrqueting?",
        "confirm_text": "Ja no rebràs sol·licituds d'opinió en aquesta adreça. "
        "Els correus sobre les teves comandes continuaran arribant.",
        "button": "Donar-me de baixa",
        "done_title": "T'has donat de baixa",
        "done_text": "No enviarem més sol·licituds d'opinió a aquesta adreça. "
        "Els correus sobre les teves comandes continuaran arribant.",
        "unknown_title": "Enllaç no vàlid",
        "unknown_text": "Aquest enllaç per donar-te de baixa no és vàlid. "
        "Fes servir l'enllaç del correu més recent que t'hem enviat.",
    },
    "ko": {
        "confirm_title": "마케팅 메일 수신을 거부하시겠습니까?",
        "confirm_text": "이 주소로 더 이상 리뷰 요청 메일이 발송되지 않습니다. "
        "주문 관련 메일은 계속 받으실 수 있습니다.",
        "button": "수신 거부",
        "done_title": "수신 거부가 완료되었습니다",
        "done_text": "이 주소로 더 이상 리뷰 요청 메일을 보내지 않겠습니다. "
        "주문 관련 메일은 계속 받으실 수 있습니다.",
        "unknown_title": "유효하지 않은 링크",
        "unknown_text": "유효하지 않은 수신 거부 링크입니다. 가장 최근에 받으신 메일의 링크를 이용해 주세요.",
    },
}


def _page(request: Request, state: str, status_code: int = 200) -> HTMLResponse:
    """`state`: `confirm` (with the button), `done` or `unknown`; in the language the email link
    names (`?lang=`, the customer's), else the browser's."""
    named = request.query_params.get("lang")
    lang = resolve_locale(named) if named else negotiate(request.headers.get("accept-language"))
    text = _TEXT[lang]
    context = {
        "lang": lang,
        "title": text[f"{state}_title"],
        "text": text[f"{state}_text"],
        "button": text["button"] if state == "confirm" else None,
        "tone": {"confirm": "info", "done": "good"}.get(state, "muted"),
    }
    return page(render("unsubscribe.html", context), status_code)


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
