"""Protocol-faithful fakes of the upstreams (aiohttp.web on 127.0.0.1) and an in-process ASGI client."""

from __future__ import annotations

__all__: list[str] = []
