"""The console's session when API keys are configured: a key entered once per browser session becomes a
signed cookie, so pages, images and the event stream (which a browser cannot send headers with) work.

The cookie (`pdp_console`, HttpOnly, SameSite=Strict, no expiry date: it ends with the browser session)
holds `<issued unix time>.<hex HMAC-SHA256(secret, issued + sha256(key))>`: never the key, checked
against every configured key's hash in constant time, refused after `console.session_ttl_s` or when the
key is removed from the configuration. The key itself travels once, in a POST body; it is never logged
and never put in a URL. Requests that change something (POST, DELETE) on a cookie must come from this
site (`Origin` / `Sec-Fetch-Site`), on top of SameSite.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

import msgspec
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.pages.security import html_headers
from service_common.auth import ApiKeyMiddleware, hash_key
from shared_contracts._base import Inbound
from shared_contracts.errors import ErrorEnvelope, Unauthorized

__all__ = ["COOKIE", "ConsoleAuthMiddleware", "ConsoleLogin", "ConsoleSessions", "LoginPage"]

COOKIE = "pdp_console"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Clocks of replicas may differ a little; a token from the near future is still fine.
_SKEW_S = 60.0
_encode = msgspec.json.Encoder().encode

# (scope) -> the 401 HTML page asking for a key.
LoginPage = Callable[[Scope], Awaitable[bytes]]


class ConsoleLogin(Inbound):
    """Body of `POST /api/v1/console/session`: one of the service's API keys."""

    key: Annotated[str, msgspec.Meta(min_length=1, max_length=4_096)]


class ConsoleSessions:
    """Issues and checks console session tokens for a set of key hashes (none: the console is open)."""

    def __init__(
        self,
        hashes: frozenset[bytes],
        *,
        secret: str = "",
        ttl_s: float = 43_200.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._hashes = tuple(hashes)
        # A random secret lives as long as the process: its sessions end with it.
        self._secret = secret.encode("utf-8") if secret else secrets.token_bytes(32)
        self.ttl_s = ttl_s
        self._clock = clock

    @property
    def enabled(self) -> bool:
        """Whether keys are configured (else nothing is checked)."""
        return bool(self._hashes)

    def _mac(self, issued: str, key_hash: bytes) -> str:
        return hmac.new(self._secret, issued.encode("ascii") + b"." + key_hash, hashlib.sha256).hexdigest()

    def login(self, key: str) -> str | None:
        """A new token when `key` is one of the configured keys, else None."""
        digest = hash_key(key)
        found = None
        for known in self._hashes:  # every hash compared, so timing tells nothing about which matched
            if hmac.compare_digest(digest, known):
                found = known
        if found is None:
            return None
        issued = str(int(self._clock()))
        return f"{issued}.{self._mac(issued, found)}"

    def valid(self, token: str | None) -> bool:
        """Whether `token` was issued here for a key still configured, and is not too old."""
        if not token or token.count(".") != 1:
            return False
        issued, mac = token.split(".")
        if not issued.isdigit() or len(issued) > 12:
            return False
        age = self._clock() - int(issued)
        if not -_SKEW_S <= age <= self.ttl_s:
            return False
        found = False
        for known in self._hashes:
            found |= hmac.compare_digest(self._mac(issued, known), mac)
        return found

    def cookie(self, token: str, *, secure: bool) -> str:
        """The `Set-Cookie` value for a new session: no Max-Age, so it ends with the browser session."""
        return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")

    def clear_cookie(self, *, secure: bool) -> str:
        """The `Set-Cookie` value that ends the session."""
        return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def same_site(scope: Scope) -> bool:
    """Whether a browser says the request comes from this site (a request without those headers is not a
    browser's cross-site one). Hosts are compared, not schemes: a TLS proxy in front changes the scheme."""
    origin = _header(scope, b"origin")
    if origin is not None:
        host = _header(scope, b"host") or ""
        return origin.split("://", 1)[-1].rstrip("/") == host
    fetch_site = _header(scope, b"sec-fetch-site")
    return fetch_site in (None, "same-origin", "none")


class ConsoleAuthMiddleware:
    """Pure ASGI, in place of the plain key check: a valid console cookie lets a request through; a browser
    asking for a page without one gets the key form (401, HTML); everything else goes to the Bearer check."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        sessions: ConsoleSessions,
        hashes: frozenset[bytes],
        open_paths: Iterable[str],
        login_page: LoginPage,
    ) -> None:
        self.app = app
        self.sessions = sessions
        self._open = frozenset(open_paths)
        self._login_page = login_page
        self._guarded = ApiKeyMiddleware(app, hashes=hashes, open_paths=self._open)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open:
            await self.app(scope, receive, send)
            return
        token = cookie_parser(_header(scope, b"cookie") or "").get(COOKIE)
        if self.sessions.valid(token):
            if scope["method"] in _SAFE_METHODS or same_site(scope):
                await self.app(scope, receive, send)
            else:
                await _refuse(scope, send, "a console session is valid only for requests from the console's own site")
            return
        accept = _header(scope, b"accept") or ""
        if scope["method"] in ("GET", "HEAD") and "text/html" in accept and _header(scope, b"authorization") is None:
            await _send_html(send, 401, await self._login_page(scope))
            return
        await self._guarded(scope, receive, send)


async def _refuse(scope: Scope, send: Send, message: str) -> None:
    state = scope.setdefault("state", {})
    state["error_code"] = Unauthorized.code
    request_id = state.get("request_id")
    error = Unauthorized(message).to_body(request_id if isinstance(request_id, str) else None)
    body = _encode(ErrorEnvelope(error=error))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_html(send: Send, status: int, body: bytes) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in html_headers().items()]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
