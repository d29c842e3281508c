"""Headers every HTML answer carries: a strict Content-Security-Policy and friends.

Only this origin's own scripts, styles and images load; no inline script or style runs (so text that
slipped through as markup could not run either); nothing is framed; forms post only here.
"""

from __future__ import annotations

__all__ = ["CSP", "html_headers"]

CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
])


def html_headers() -> dict[str, str]:
    """Headers of an HTML response (content type included)."""
    return {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
        # Pages show live data (and may be behind a key): never kept by shared caches.
        "cache-control": "no-store",
    }
