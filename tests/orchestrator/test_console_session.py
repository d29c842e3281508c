"""The console with API keys on: a key entered once becomes a session cookie (never the key itself), pages ask
browsers for the key, programs still use Bearer, and a cookie cannot be used from another site."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from orchestrator.app import create_app
from orchestrator.config import OrchestratorConfig, RunsConfig
from orchestrator.pages.session import COOKIE, ConsoleSessions
from service_common.auth import AuthSettings, hash_key
from tests.orchestrator.answers import PRODUCT
from tests.orchestrator.conftest import client_config
from tests.orchestrator.inprocess import mock_gateway_apps, serve_app

KEY = "console-key-3f9a-never-logged"
RUNS = "/api/v1/flows/p0-product-detail/runs"
SESSION = "/api/v1/console/session"
HTML = {"accept": "text/html"}


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[str]:
    llm_app, media_app = mock_gateway_apps(tmp_path / "media")
    async with serve_app(llm_app) as llm_url, serve_app(media_app) as media_url:
        config = OrchestratorConfig(llm_gateway=client_config(llm_url), media_gateway=client_config(media_url),
                                    runs=RunsConfig(dir=str(tmp_path / "runs")), auth=AuthSettings(api_keys=KEY))
        async with serve_app(create_app(config)) as url:
            yield url


def browser_like() -> aiohttp.ClientSession:
    """A client that keeps cookies for 127.0.0.1 as a browser does (aiohttp's jar skips IP hosts by default)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, str, Any]:
    async with session.request(method, url, **kwargs) as resp:
        return resp.status, (await resp.read()).decode("utf-8", "replace"), resp.headers


async def test_a_browser_without_a_session_gets_the_key_form(service: str) -> None:
    async with aiohttp.ClientSession() as session:
        status, page, headers = await call(session, "GET", service + "/", headers=HTML)
        assert status == 401 and headers["content-type"].startswith("text/html")
        assert 'id="login-form" method="post" action="/api/v1/console/session"' in page
        assert 'type="password"' in page and "content-security-policy" in headers
        # What the form needs loads without a key; everything else does not.
        for path in ("/static/console.js", "/static/console.css", "/static/favicon.svg", "/docs"):
            assert (await call(session, "GET", service + path))[0] == 200
        status, body, headers = await call(session, "GET", service + "/")
        assert status == 401 and '"unauthorized"' in body and headers["www-authenticate"].startswith("Bearer")


async def test_a_key_entered_once_becomes_a_session_cookie_for_pages_images_and_events(service: str) -> None:
    with structlog.testing.capture_logs() as logs:
        async with browser_like() as session:
            status, body, _ = await call(session, "POST", service + SESSION, json={"key": "wrong"})
            assert status == 401 and '"unauthorized"' in body
            status, _, headers = await call(session, "POST", service + SESSION, json={"key": KEY})
            assert status == 200
            cookie = headers["set-cookie"]
            assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "Max-Age" not in cookie and "Expires" not in cookie  # ends with the browser session
            value = cookie.split(";")[0].split("=", 1)[1]
            assert KEY not in value and hashlib.sha256(KEY.encode()).hexdigest() not in value
            # The session is enough for the console, a run, its page, its image and its events.
            status, page, _ = await call(session, "GET", service + "/", headers=HTML)
            assert status == 200 and 'id="run-form"' in page and 'id="forget-key"' in page
            origin = {"origin": service}
            status, body, _ = await call(session, "POST", service + RUNS, json={"product": PRODUCT}, headers=origin)
            assert status == 200, body
            doc = json.loads(body)
            for path in (f"/runs/{doc['run_id']}", doc["images"][0]["url"], f"/api/v1/runs/{doc['run_id']}/events",
                         f"/runs/{doc['run_id']}/export"):
                assert (await call(session, "GET", service + path))[0] == 200, path
            # Forgetting the key ends the session.
            status, _, headers = await call(session, "DELETE", service + SESSION, headers=origin)
            assert status == 200 and "Max-Age=0" in headers["set-cookie"]
            assert (await call(session, "GET", service + "/", headers=HTML))[0] == 401
    assert KEY not in repr(logs)


async def test_a_session_cookie_cannot_be_used_from_another_site(service: str) -> None:
    async with browser_like() as session:
        await call(session, "POST", service + SESSION, json={"key": KEY})
        for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
            status, body, _ = await call(session, "POST", service + RUNS, json={"product": PRODUCT}, headers=headers)
            assert status == 401 and "console's own site" in body
        # Reading is fine (SameSite=Strict already keeps the cookie off other sites' requests).
        cross_site = {"sec-fetch-site": "cross-site"}
        assert (await call(session, "GET", service + "/api/v1/runs", headers=cross_site))[0] == 200


async def test_programs_keep_using_bearer_keys(service: str) -> None:
    bearer = {"authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession() as session:
        assert (await call(session, "GET", service + "/api/v1/runs"))[0] == 401
        assert (await call(session, "GET", service + "/api/v1/runs", headers=bearer))[0] == 200
        assert (await call(session, "GET", service + "/", headers={**HTML, **bearer}))[0] == 200
        status, _, headers = await call(session, "POST", service + SESSION, data=f'{{"key": "{KEY}"}}',
                                        headers={"content-type": "text/plain"})
        assert status == 415 and "set-cookie" not in headers


def test_session_tokens_expire_and_die_with_their_key() -> None:
    now = [1_000_000.0]
    sessions = ConsoleSessions(frozenset({hash_key(KEY)}), secret="s", ttl_s=3600, clock=lambda: now[0])
    token = sessions.login(KEY)
    assert token is not None and sessions.valid(token)
    assert sessions.login("other") is None and not sessions.valid("1000000.deadbeef") and not sessions.valid("x")
    now[0] += 3601
    assert not sessions.valid(token)
    now[0] -= 3601
    other_key = ConsoleSessions(frozenset({hash_key("another")}), secret="s", ttl_s=3600, clock=lambda: now[0])
    assert not other_key.valid(token)
    other_secret = ConsoleSessions(frozenset({hash_key(KEY)}), secret="t", ttl_s=3600, clock=lambda: now[0])
    assert not other_secret.valid(token)


async def test_without_keys_the_console_is_open_and_sets_nothing(tmp_path: Path) -> None:
    config = OrchestratorConfig(llm_gateway=client_config("http://127.0.0.1:9"),
                                media_gateway=client_config("http://127.0.0.1:9"), runs=RunsConfig(dir=str(tmp_path)))
    async with serve_app(create_app(config)) as url, aiohttp.ClientSession() as session:
        status, body, headers = await call(session, "POST", url + SESSION, json={"key": "anything"})
        assert status == 200 and '"open"' in body and "set-cookie" not in headers
        status, page, _ = await call(session, "GET", url + "/", headers=HTML)
        assert status == 200 and 'id="forget-key"' not in page
