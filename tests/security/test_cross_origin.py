"""Issue 13 item 11: a web page on another origin can neither drive nor read the services' JSON API.

A browser sends a cross-origin POST without asking first (no CORS preflight) only when its body is
`text/plain`, a form or untyped; the JSON endpoints now answer those 415 `unsupported_media_type`, so a page
can no longer start a run on a deployment without keys. A JSON body makes the browser ask first, and CORS
stays closed unless `server.cors_origins` names the origin. Checked on the real processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from tests.media_gateway.conftest import PRODUCT as IMAGE
from tests.orchestrator.answers import PRODUCT
from tests.security._edge import POST_PATHS, SERVICES, open_raw, read_answer, service

pytestmark = pytest.mark.slow

EVIL = "https://evil.example"
SHOP = "https://shop.example"
BODIES: dict[str, dict[str, Any]] = {
    "llm_gateway": {"role": "brand", "task": "profile", "messages": [{"role": "user", "content": "Lamp."}]},
    "media_gateway": IMAGE,
    "orchestrator": {"product": PRODUCT, "wait": False},
}
SIMPLE_TYPES = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x"]
CORS_ENV = {"llm_gateway": "LLM_GATEWAY_CORS_ORIGINS", "media_gateway": "MEDIA_GATEWAY_CORS_ORIGINS",
            "orchestrator": "ORCHESTRATOR_CORS_ORIGINS"}


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, dict(response.headers), await response.json(content_type=None)


@pytest.mark.parametrize("name", SERVICES)
async def test_simple_cross_origin_posts_are_refused_and_start_nothing(name: str, tmp_path: Path) -> None:
    body = msgspec.json.encode(BODIES[name])
    async with service(name, tmp_path) as child:
        url = child.url + POST_PATHS[name]
        for content_type in SIMPLE_TYPES:
            status, headers, answer = await _post(url, body, {"content-type": content_type, "origin": EVIL})
            assert status == 415, (content_type, answer)
            assert answer["error"]["code"] == "unsupported_media_type"
            assert answer["error"]["details"] == {"content_type": content_type, "expected": "application/json"}
            assert "access-control-allow-origin" not in {k.lower() for k in headers}
        # A body with no Content-Type at all (fetch with a Blob): raw, as client libraries add one.
        reader, writer = await open_raw(child.port)
        writer.write(f"POST {POST_PATHS[name]} HTTP/1.1\r\nHost: x\r\nOrigin: {EVIL}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        untyped = await read_answer(reader)
        writer.close()
        assert untyped.status == 415 and untyped.json()["error"]["details"]["content_type"] is None, untyped
        if name == "orchestrator":
            async with aiohttp.ClientSession() as session, session.get(child.url + "/api/v1/runs") as response:
                assert (await response.json())["runs"] == []  # no run was started
        # The same body declared as JSON is taken (whatever else then happens to it).
        status, _, answer = await _post(url, body, {"content-type": "application/json; charset=utf-8"})
        assert status != 415, answer


@pytest.mark.parametrize("name", SERVICES)
async def test_cors_stays_closed_unless_configured(name: str, tmp_path: Path) -> None:
    preflight = {"origin": SHOP, "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type"}
    async with service(name, tmp_path) as child, aiohttp.ClientSession() as session:
        async with session.options(child.url + POST_PATHS[name], headers=preflight) as response:
            assert response.status == 405
            assert "access-control-allow-origin" not in response.headers
        async with session.get(child.url + "/healthz", headers={"origin": SHOP}) as response:
            assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("name", SERVICES)
async def test_configured_origins_are_allowed_and_no_other(name: str, tmp_path: Path) -> None:
    ask = {"access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization"}
    async with service(name, tmp_path, env={CORS_ENV[name]: SHOP}) as child, aiohttp.ClientSession() as session:
        async with session.options(child.url + POST_PATHS[name], headers={"origin": SHOP, **ask}) as response:
            assert response.status == 200
            assert response.headers["access-control-allow-origin"] == SHOP
            assert "authorization" in response.headers["access-control-allow-headers"].lower()
        async with session.options(child.url + POST_PATHS[name], headers={"origin": EVIL, **ask}) as response:
            assert response.status == 400
            assert "access-control-allow-origin" not in response.headers
        async with session.get(child.url + "/healthz", headers={"origin": SHOP}) as response:
            assert response.headers["access-control-allow-origin"] == SHOP
            assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
        async with session.get(child.url + "/healthz", headers={"origin": EVIL}) as response:
            assert "access-control-allow-origin" not in response.headers
