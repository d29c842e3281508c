"""Issue 13 item 12: `X-Forwarded-Proto`/`-For` are believed only from `server.trusted_proxies` (none by default).

uvicorn's default believes them from 127.0.0.1, so any local client (or anything a local proxy passes on
unfiltered) chose the scheme of the media gateway's image URLs. Checked on the real process.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.media_gateway.conftest import GENERATE, PRODUCT
from tests.security._edge import service

pytestmark = pytest.mark.slow

SPOOFED = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"}


async def _image_url(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.post(url + GENERATE, json=PRODUCT, headers=SPOOFED) as resp:
        job = await resp.json()
        assert resp.status == 200, job
    return str(job["images"][0]["url"])


async def test_a_client_cannot_choose_the_scheme_of_image_urls(tmp_path: Path) -> None:
    async with service("media_gateway", tmp_path) as child:
        assert (await _image_url(child.url)).startswith(f"http://127.0.0.1:{child.port}/api/v1/media/images/")


async def test_a_configured_proxy_is_believed(tmp_path: Path) -> None:
    async with service("media_gateway", tmp_path, env={"MEDIA_GATEWAY_TRUSTED_PROXIES": "127.0.0.1, ::1"}) as child:
        assert (await _image_url(child.url)).startswith(f"https://127.0.0.1:{child.port}/api/v1/media/images/")
