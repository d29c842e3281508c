"""CORS, closed unless configured: `server.cors_origins` in a service's YAML names the browser origins allowed.

With no origin configured nothing is installed, so no `Access-Control-Allow-*` header is ever sent and a
browser refuses to let another site's page read an answer or send a JSON body (the preflight gets 405).
With origins configured, Starlette's CORS middleware answers their preflights and marks their answers;
any other origin is refused as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

__all__ = ["CORS_REQUEST_HEADERS", "CORS_RESPONSE_HEADERS", "cors_middleware"]

# What a browser page may send: the JSON body's type, the key, and the headers our API reads.
CORS_REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "traceparent",
    "x-generator-mode",
    "x-mock-scenario",
    "x-request-id",
    "x-request-timeout",
)
# What a page may read back besides the simple headers.
CORS_RESPONSE_HEADERS = ("location", "retry-after", "x-generator-mode", "x-request-id")


def cors_middleware(origins: Sequence[str]) -> list[Middleware]:
    """The middleware spec for `origins` (put it after RequestMiddleware, before the key check); [] for none."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "HEAD", "POST", "DELETE"],
            allow_headers=list(CORS_REQUEST_HEADERS),
            expose_headers=list(CORS_RESPONSE_HEADERS),
            max_age=600,
        )
    ]
