"""Optional API keys: `Authorization: Bearer <key>`, checked by a pure-ASGI middleware against sha256 hashes.

YAML (`auth:` in each service's config) lists hex sha256 hashes of the keys, or plain keys taken from
the environment (`api_keys: ${LLM_GATEWAY_API_KEYS:-}`, comma-separated). Only hashes are kept in memory.
With no key configured, `auth_middleware` adds nothing, so an open service pays nothing. Health, metrics and
the OpenAPI document stay open. A wrong or missing key gets the 401 envelope; keys are never logged.

    python -c "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())" "$KEY"
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Annotated

import msgspec
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from shared_contracts.errors import ErrorEnvelope, Unauthorized

from .config import ConfigError

__all__ = ["DEFAULT_OPEN_PATHS", "ApiKeyMiddleware", "AuthSettings", "bearer_header", "hash_key", "key_hashes"]

DEFAULT_OPEN_PATHS = ("/healthz", "/readyz", "/metrics", "/openapi.json")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_encode = msgspec.json.Encoder().encode
_PREFIX = b"bearer "


class AuthSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """YAML `auth:`. Keys are never shown by `repr` (so never by a log line that prints the config)."""

    # Hex sha256 of each accepted key (lower or upper case).
    api_key_sha256: list[str] = []
    # Plain keys, normally from `${VAR}`: a list, or one comma-separated string; hashed at start-up.
    api_keys: Annotated[str, msgspec.Meta(max_length=65_536)] | list[str] | None = None
    # Paths answered without a key (exact match).
    open_paths: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_OPEN_PATHS))

    def __repr__(self) -> str:
        plain = self.api_keys
        count = len(plain) if isinstance(plain, list) else len([k for k in (plain or "").split(",") if k.strip()])
        return f"AuthSettings(api_key_sha256=<{len(self.api_key_sha256)} hashes>, api_keys=<{count} keys>, " \
               f"open_paths={self.open_paths!r})"


def hash_key(key: str) -> bytes:
    """The sha256 digest of a key as the middleware compares it."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_hashes(settings: AuthSettings, *, where: str = "auth") -> frozenset[bytes]:
    """Every accepted key's digest; a malformed hash is a ConfigError naming its YAML path."""
    digests: set[bytes] = set()
    for index, text in enumerate(settings.api_key_sha256):
        value = text.strip().lower()
        if not _HEX64.match(value):
            raise ConfigError(f"{where}.api_key_sha256[{index}]: expected 64 hex digits (a sha256 hash)")
        digests.add(bytes.fromhex(value))
    plain = settings.api_keys
    keys: Iterable[str] = plain.split(",") if isinstance(plain, str) else (plain or [])
    for key in keys:
        if key.strip():
            digests.add(hash_key(key.strip()))
    return frozenset(digests)


def bearer_header(key: str | None) -> dict[str, str]:
    """`{"authorization": "Bearer <key>"}` for a call to a service that wants one; empty without a key."""
    return {"authorization": f"Bearer {key}"} if key else {}


class ApiKeyMiddleware:
    """Pure ASGI: HTTP requests outside `open_paths` need a Bearer key whose sha256 is configured."""

    def __init__(
        self, app: ASGIApp, *, hashes: frozenset[bytes], open_paths: Iterable[str] = DEFAULT_OPEN_PATHS
    ) -> None:
        if not hashes:
            raise ValueError("ApiKeyMiddleware needs at least one key hash; without keys do not install it")
        self.app = app
        self._hashes = tuple(hashes)
        self._open = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                if len(value) <= len(_PREFIX) or value[: len(_PREFIX)].lower() != _PREFIX:
                    return False
                digest = hashlib.sha256(value[len(_PREFIX) :].strip()).digest()
                # Compare with every hash, whatever matched, so timing tells nothing about which one did.
                found = False
                for known in self._hashes:
                    found |= hmac.compare_digest(digest, known)
                return found
        return False

    async def _refuse(self, scope: Scope, send: Send) -> None:
        state = scope.setdefault("state", {})
        request_id = state.get("request_id")
        state["error_code"] = Unauthorized.code  # read by the metrics middleware
        err = Unauthorized("missing or invalid API key; send Authorization: Bearer <key>")
        body = _encode(ErrorEnvelope(error=err.to_body(request_id if isinstance(request_id, str) else None)))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="api"'),
        ]
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def auth_middleware(settings: AuthSettings, *, where: str = "auth") -> list[Middleware]:
    """The Starlette middleware spec for the key check (put it after RequestMiddleware); [] without keys."""
    hashes = key_hashes(settings, where=where)
    if not hashes:
        return []
    return [Middleware(ApiKeyMiddleware, hashes=hashes, open_paths=settings.open_paths)]


__all__ += ["auth_middleware"]
