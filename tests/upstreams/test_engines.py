"""Smoke tests of the real engines the later integration tests build on.

PostgreSQL (asyncpg), moto's S3 server (boto3), headless Chromium (Playwright) and newman against a tiny
aiohttp site on 127.0.0.1. Missing engines skip (or fail under PDP_REQUIRE_ENGINES=1): see
tests/upstreams/fixtures_engines.py; install them with .ci/system_deps.sh and .ci/node_deps.sh.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from aiohttp import web
from PIL import Image

from tests.upstreams.postgres import PostgresServer
from tests.upstreams.s3 import S3Server

if TYPE_CHECKING:
    from types import ModuleType

    from playwright.async_api import Page

    from tests.upstreams.fixtures_engines import NodeTools

# Not imported at the top: pytest must import a plugin itself to rewrite its asserts (else a warning = error).

pytestmark = pytest.mark.slow

PAGE_TITLE = "PDP engine smoke page"
PIXEL_SIZE = (7, 3)


def require_module(name: str, install_hint: str | None = None) -> ModuleType:
    """Import what a test needs, or skip it (fail under PDP_REQUIRE_ENGINES=1)."""
    from tests.upstreams.fixtures_engines import require_module as require

    return require(name, install_hint)


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest_asyncio.fixture
async def tiny_site() -> AsyncIterator[str]:
    """A tiny aiohttp site on 127.0.0.1 in the test's loop: an HTML page with an image, and a JSON API."""
    png = _png(PIXEL_SIZE)

    async def index(_request: web.Request) -> web.Response:
        html = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{PAGE_TITLE}</title></head>"
            "<body><h1>Produktseite – ünïcödé</h1><img id='pixel' src='/pixel.png' alt='pixel'></body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    async def pixel(_request: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "echo": request.query.get("q", "")}, headers={"X-Engine": "aiohttp"})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/pixel.png", pixel)
    app.router.add_get("/api/ping", ping)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# -- PostgreSQL -------------------------------------------------------------------------------------------------


async def test_postgres_select_and_skip_locked(postgres_dsn: str) -> None:
    asyncpg = require_module("asyncpg")
    first = await asyncpg.connect(postgres_dsn)
    second = await asyncpg.connect(postgres_dsn)
    try:
        assert await first.fetchval("SELECT 1") == 1
        assert await first.fetchval("SHOW server_encoding") == "UTF8"
        await first.execute(
            "CREATE TABLE jobs (id int PRIMARY KEY, state text NOT NULL DEFAULT 'queued');"
            "INSERT INTO jobs (id) SELECT generate_series(1, 3);"
        )
        claim = "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
        async with first.transaction():
            assert await first.fetchval(claim) == 1
            async with second.transaction():
                # Row 1 is locked by `first`: `second` skips it instead of waiting.
                assert await second.fetchval(claim) == 2
                await second.execute("UPDATE jobs SET state = 'running' WHERE id = 2")
            await first.execute("UPDATE jobs SET state = 'running' WHERE id = 1")
        assert await first.fetchval(claim) == 3
    finally:
        await first.close()
        await second.close()


async def test_postgres_survives_sigkill() -> None:
    """kill() SIGKILLs the postmaster; start() recovers the committed data on the same port."""
    asyncpg = require_module("asyncpg")
    try:
        server = PostgresServer()
    except FileNotFoundError as exc:
        from tests.upstreams.fixtures_engines import engine_unavailable

        engine_unavailable(str(exc))
    with server:
        dsn = server.create_database("crash")
        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE kv (k text PRIMARY KEY, v text); INSERT INTO kv VALUES ('a', 'b')")
        port = server.port
        server.kill()
        with pytest.raises((asyncpg.exceptions.ConnectionDoesNotExistError, ConnectionError, OSError)):
            await conn.fetchval("SELECT 1")
        conn.terminate()
        server.start()
        assert server.port == port
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT v FROM kv WHERE k = 'a'") == "b"
        finally:
            await conn.close()


# -- S3 (moto) --------------------------------------------------------------------------------------------------


def test_s3_put_get_head_etag(s3_server: S3Server, s3_bucket: str) -> None:
    boto3 = require_module("boto3")
    botocore_exceptions = require_module("botocore.exceptions", "boto3")
    env = s3_server.client_env()
    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    body = _png(PIXEL_SIZE)
    etag = f'"{hashlib.md5(body).hexdigest()}"'  # S3's ETag of a single-part upload
    key = "renders/sku-1/main.png"
    try:
        put = client.put_object(
            Bucket=s3_bucket, Key=key, Body=body, ContentType="image/png", Metadata={"sku": "sku-1"}
        )
        assert put["ETag"] == etag

        head = client.head_object(Bucket=s3_bucket, Key=key)
        assert head["ETag"] == etag
        assert head["ContentLength"] == len(body)
        assert head["ContentType"] == "image/png"
        assert head["Metadata"] == {"sku": "sku-1"}

        got = client.get_object(Bucket=s3_bucket, Key=key)
        assert got["ETag"] == etag
        assert got["Body"].read() == body

        with pytest.raises(botocore_exceptions.ClientError) as not_modified:
            client.get_object(Bucket=s3_bucket, Key=key, IfNoneMatch=etag)
        assert not_modified.value.response["Error"]["Code"] == "304"

        with pytest.raises(botocore_exceptions.ClientError) as missing:
            client.head_object(Bucket=s3_bucket, Key="renders/none.png")
        assert missing.value.response["Error"]["Code"] == "404"
    finally:
        client.close()


# -- Chromium (Playwright) --------------------------------------------------------------------------------------


async def test_chromium_renders_tiny_site(page: Page, tiny_site: str, tmp_path: Path) -> None:
    response = await page.goto(tiny_site + "/", wait_until="load")
    assert response is not None and response.ok
    assert await page.title() == PAGE_TITLE
    await page.wait_for_function("document.getElementById('pixel').complete")
    natural = await page.evaluate(
        "() => { const img = document.getElementById('pixel'); return [img.naturalWidth, img.naturalHeight]; }"
    )
    assert tuple(natural) == PIXEL_SIZE

    shot = tmp_path / "page.png"
    await page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as image:
        assert image.format == "PNG"
        assert image.size[0] == 1280


# -- newman (npm) -----------------------------------------------------------------------------------------------


async def test_newman_runs_collection(node_tools: NodeTools, tiny_site: str, tmp_path: Path) -> None:
    collection: dict[str, Any] = {
        "info": {
            "name": "engine smoke",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "variable": [{"key": "base", "value": tiny_site}],
        "item": [
            {
                "name": "ping",
                "request": {"method": "GET", "url": "{{base}}/api/ping?q=hello"},
                "event": [
                    {
                        "listen": "test",
                        "script": {
                            "type": "text/javascript",
                            "exec": [
                                "pm.test('status 200', () => pm.response.to.have.status(200));",
                                "pm.test('header', () => "
                                "pm.expect(pm.response.headers.get('X-Engine')).to.eql('aiohttp'));",
                                "pm.test('body', () => "
                                "pm.expect(pm.response.json()).to.eql({ok: true, echo: 'hello'}));",
                            ],
                        },
                    }
                ],
            }
        ],
    }
    collection_file = tmp_path / "collection.json"
    collection_file.write_text(json.dumps(collection))
    report = tmp_path / "newman.json"
    # Asynchronously: the site newman calls is served by this very event loop.
    process = await asyncio.create_subprocess_exec(
        str(node_tools.newman),
        "run",
        str(collection_file),
        "--reporters",
        "cli,json",
        "--reporter-json-export",
        str(report),
        "--disable-unicode",
        "--color",
        "off",
        env=node_tools.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output.decode(errors="replace")
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["assertions"] == {"total": 3, "pending": 0, "failed": 0}
    assert stats["requests"]["failed"] == 0


async def test_openai_npm_package_loads(node_tools: NodeTools) -> None:
    script = (
        "const OpenAI = require('openai');"
        "const c = new OpenAI({apiKey: 'sk-test', baseURL: 'http://127.0.0.1:9/v1'});"
        "process.stdout.write(JSON.stringify({version: require('openai/version').VERSION,"
        " create: typeof c.chat.completions.create}));"
    )
    process = await asyncio.create_subprocess_exec(
        "node", "-e", script, env=node_tools.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode(errors="replace")
    info = json.loads(out)
    assert info["create"] == "function"
    assert info["version"].split(".")[0] == "6"
