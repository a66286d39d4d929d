"""The operators' pages: `/ops/carriers` (the carrier report as a table and an on-time chart) and
its login (`POST /ops/login`, `POST /ops/logout`).

An operator's API key opens them, sent as HTTP basic auth's password or kept in an HttpOnly,
SameSite=Strict cookie by the login form (`ordertrack.web.auth.browser_key`). Server-rendered with
autoescaped templates, inline CSS and an inline SVG chart: no script and no file, so they carry the
tracking page's strict headers (no caching, no referrer, no framing).
"""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ordertrack.domain.carrier_report import MAX_WINDOW
from ordertrack.reports import carrier_report_since
from ordertrack.templating import environment
from ordertrack.web.auth import OPERATOR_COOKIE, browser_principal, find_key
from ordertrack.web.charts import on_time_chart
from ordertrack.web.deps import get_settings, resources
from ordertrack.web.pages import PAGE_HEADERS, page, read_form
from ordertrack.web.reports import DEFAULT_SINCE

CARRIERS_PATH = "/ops/carriers"
LOGIN_PATH = "/ops/login"
LOGOUT_PATH = "/ops/logout"
COOKIE_MAX_AGE = 8 * 3600  # a working day; then the key is asked for again
# The browser asks for the key itself (its basic-auth prompt); cancelling it shows the login form.
CHALLENGE = {"WWW-Authenticate": 'Basic realm="ordertrack operators", charset="UTF-8"'}

router = APIRouter(include_in_schema=False)


def render(template: str, **context: Any) -> str:
    return environment("en").get_template(f"ops/{template}").render(context)


def _login(status: int, error: str | None = None) -> HTMLResponse:
    return page(render("login.html", error=error), status, CHALLENGE if status == 401 else None)


@router.get(CARRIERS_PATH, response_class=HTMLResponse)
async def carriers_page(request: Request, since: str = DEFAULT_SINCE) -> Response:
    principal = browser_principal(request)
    if principal is None:
        return _login(401)
    if not principal.may("operator"):
        return _login(
            403, f"The key of {principal.name} is a {principal.role} key; this page needs an operator key."
        )
    since = since.strip() or DEFAULT_SINCE
    context: dict[str, Any] = {"operator": principal.name, "since": since, "max_days": MAX_WINDOW.days}
    try:
        report = await carrier_report_since(resources(request).store, since, datetime.now(UTC))
    except ValueError as err:
        return page(render("carriers.html", **context, report=None, chart=None, error=str(err)), 422)
    return page(render("carriers.html", **context, report=report, chart=on_time_chart(report), error=None))


@router.post(LOGIN_PATH, response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """The login form's key: an operator's is kept in the cookie and the browser sent to the report."""
    key = (await read_form(request)).get("key", "").strip()
    entry = find_key(key, get_settings(request).api_keys) if key else None
    if entry is None:
        return _login(401, "That key is not valid." if key else "Enter an operator's API key.")
    if entry.role != "operator":
        return _login(403, f"That is a {entry.role} key; this page needs an operator key.")
    response = RedirectResponse(CARRIERS_PATH, status_code=303, headers=dict(PAGE_HEADERS))
    response.set_cookie(
        OPERATOR_COOKIE,
        key,
        max_age=COOKIE_MAX_AGE,
        path="/ops",
        secure=get_settings(request).public_url.startswith("https://"),
        httponly=True,
        samesite="strict",
    )
    return response


@router.post(LOGOUT_PATH, response_class=HTMLResponse)
async def logout() -> Response:
    response = RedirectResponse(CARRIERS_PATH, status_code=303, headers=dict(PAGE_HEADERS))
    response.delete_cookie(OPERATOR_COOKIE, path="/ops", httponly=True, samesite="strict")
    return response
