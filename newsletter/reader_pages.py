"""What the reader-facing pages share: their templates, headers and CSRF protection.

The sign-up, confirmation, preferences and feedback pages (`signup_pages.py`,
`manage_pages.py`) are Jinja templates in `templates/web/` (autoescaped; one missing
from a folder of templates made before them is taken from the package). Every form on
them is protected against cross-site requests by asgi-csrf (a signed token in a cookie
that each form must echo in its `csrftoken` field); a POST to those paths without it
gets 403 and changes nothing, cookie or no cookie. The one-click unsubscribe POST
(RFC 8058) is exempt: mail clients send it without cookies or a form token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import jinja2
from asgi_csrf import asgi_csrf
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Scope, Send

from newsletter.errors import TemplateError
from newsletter.settings import PACKAGED_TEMPLATES, Settings

# Pages carry capability tokens: keep them out of caches, referrers and search engines.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
}
# Paths whose POSTs must carry the form's CSRF token, whether or not a cookie came along.
PROTECTED_PREFIXES = ("/subscribe", "/confirm/", "/manage/", "/feedback/")
CSRF_FIELD = "csrftoken"


class ProtectedPaths:
    """The `always_protect` of asgi-csrf, which asks `path in always_protect`: by prefix."""

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path.startswith(PROTECTED_PREFIXES)


def _skip_csrf(scope: Scope) -> bool:
    """RFC 8058 one-click unsubscribe comes from mail clients: no form token to echo."""
    return str(scope.get("path", "")).startswith("/unsubscribe/")


def csrf_middleware(settings: Settings, token_key: str) -> Callable[[ASGIApp], ASGIApp]:
    """Wrap an app with asgi-csrf, signing its cookie with the server's key."""
    secure = urlsplit(settings.base_url).scheme == "https"
    pages = page_environment(settings)

    async def refused(scope: Scope, send: Send, _reason: object) -> None:
        html = pages.get_template("message.html.j2").render(
            title="Form not accepted",
            message="This form was not accepted: it must be sent from this site's own page "
            "with cookies allowed. Reload the page and send the form again.",
        )
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        headers += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": html.encode("utf-8")})

    def wrap(app: ASGIApp) -> ASGIApp:
        wrapped: ASGIApp = asgi_csrf(
            app,
            signing_secret=f"{token_key}:csrf",
            always_protect=ProtectedPaths(),
            skip_if_scope=_skip_csrf,
            cookie_secure=secure,
            cookie_samesite="Lax",
            send_csrf_failed=refused,
        )
        return wrapped

    return wrap


def page_environment(settings: Settings) -> jinja2.Environment:
    folders = [settings.templates_dir / "web", PACKAGED_TEMPLATES / "web"]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(folder) for folder in folders]),
        autoescape=True,
        auto_reload=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def csrf_token(request: Request) -> str:
    """The token this request's forms must carry (asgi-csrf sets its cookie with the page)."""
    token = request.scope.get(CSRF_FIELD)
    return str(token()) if callable(token) else ""


def client_address(request: Request) -> str:
    """The client's IP (uvicorn puts a trusted proxy's X-Forwarded-For there)."""
    return request.client.host if request.client is not None else "unknown"


class Pages:
    """Renders the reader pages; subclasses add the routes."""

    def __init__(self, settings: Settings, token_key: str) -> None:
        self.settings = settings
        self.token_key = token_key
        self.templates = page_environment(settings)

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        try:
            html = self.templates.get_template(name).render(
                csrf_field=CSRF_FIELD, csrf_token=csrf_token(request), **context
            )
        except jinja2.TemplateError as exc:
            where = getattr(exc, "filename", None) or name
            line = getattr(exc, "lineno", None)
            raise TemplateError(
                f"{where}{f':{line}' if line else ''}: the page template failed: {exc}"
            ) from exc
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def message(self, request: Request, title: str, message: str, status: int = 200) -> Response:
        """A page with one heading and one message (errors and simple answers)."""
        return self.page(request, "message.html.j2", status, title=title, message=message)


Handler = Callable[[Request], Awaitable[Response]]
