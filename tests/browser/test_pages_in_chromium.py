"""The console and the run pages in a real browser (Debian's Chromium via Playwright), against the three services
running as processes in mock mode (issue 16).

Screenshots (desktop and phone width) go to var/test-artifacts/browser/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser._stack import ARTIFACTS, stack

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page

pytestmark = pytest.mark.slow

ROLES = ["brand", "brief", "strategist", "copywriter", "vision", "reviewer"]
NASTY = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> 텀블러'
KEY = "browser-console-key-5d1c-never-in-a-url"
PHONE = {"width": 390, "height": 844}
WAIT_MS = 30_000


@dataclass
class Watch:
    """What a browser context did: every request URL, console errors, uncaught page errors."""

    urls: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.on("request", lambda r: (self.urls.append(r.url), self.bodies.append(r.post_data or "")))
        context.on("console", self._console)
        context.on("weberror", lambda e: self.errors.append(f"page error: {e.error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")


@pytest.fixture
def artifacts() -> Iterator[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield ARTIFACTS


async def context_of(browser: Browser, *, viewport: dict[str, int] | None = None, **options: Any) -> BrowserContext:
    return await browser.new_context(viewport=viewport or {"width": 1280, "height": 900}, **options)


async def fetch_run(base: str, run_id: str, **headers: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/api/v1/runs/{run_id}", headers=headers) as r:
        assert r.status == 200
        doc: dict[str, Any] = await r.json()
        return doc


async def start_from_form(page: Page, base: str, *, fields: dict[str, str] | None = None) -> str:
    """Open the console, load the Korean sample, optionally change fields, start; returns the run id."""
    await page.goto(base + "/")
    await page.select_option("#sample", "ko_tumbler")  # the console reloads with the sample filled in
    await page.wait_for_url("**/?sample=ko_tumbler")
    for name, value in (fields or {}).items():
        await page.fill(f"[name={name}]", value)
    await page.click("#start-run")
    await page.wait_for_selector("#live:not([hidden])")
    run_id = await page.locator("#live-run").text_content()
    assert run_id
    return run_id


async def live_rows(page: Page) -> dict[str, str]:
    rows = page.locator("#live-steps tr[data-role]")
    found = {}
    for index in range(await rows.count()):
        row = rows.nth(index)
        role = await row.get_attribute("data-role")
        assert role is not None
        found[role] = (await row.locator(".status .badge").text_content() or "").strip()
    return found


async def image_width(page: Page, selector: str = "#hero-image") -> int:
    """The image's natural width once loaded and decoded (decode() rejects a broken image)."""
    width: int = await page.eval_on_selector(selector, "img => img.decode().then(() => img.naturalWidth)")
    return width


async def test_a_run_started_from_the_console_is_followed_live_and_its_page_shows_it(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    async with stack(tmp_path) as services:
        services.gate.hold.add("reviewer")
        context = await context_of(browser)
        watch = Watch()
        watch.attach(context)
        page = await context.new_page()
        run_id = await start_from_form(page, services.url)
        # Held at the reviewer: five steps have arrived, one by one, while the run is still running.
        # (Playwright's wait_for_function evaluates strings, which this page's CSP refuses: locators instead.)
        await expect(page.locator("#live-steps tr[data-role=reviewer] .badge")).to_have_text("running", timeout=WAIT_MS)
        assert await live_rows(page) == {**{role: "succeeded" for role in ROLES[:5]}, "reviewer": "running"}
        assert await page.get_attribute("#live", "data-status") == "running"
        assert (await fetch_run(services.url, run_id))["status"] == "running"
        services.gate.release()
        await page.wait_for_selector("#live-done:not([hidden])", timeout=WAIT_MS)
        assert await live_rows(page) == {role: "succeeded" for role in ROLES}
        events = await page.locator("#live-events li").all_text_contents()
        assert len(events) == 13 and events[-1] == "run_finished succeeded"
        for role in ROLES:
            assert events.index(f"step_started {role} running") < events.index(f"step_finished {role} succeeded")
        assert await page.locator(f'#runs-table tr[data-run-id="{run_id}"]').count() == 1  # joined the list
        await page.screenshot(path=str(artifacts / "console-desktop.png"), full_page=True)

        await page.click("#live-page")
        await page.wait_for_url(f"**/runs/{run_id}")
        doc = await fetch_run(services.url, run_id)
        assert await page.locator("#headline").text_content() == doc["outputs"]["copywriter"]["headline"]
        assert await page.get_attribute("html", "lang") == "ko"
        assert await image_width(page) == doc["images"][0]["width"]
        assert await page.locator("#steps tr[data-role]").count() == 6
        await page.screenshot(path=str(artifacts / "run-desktop.png"), full_page=True)
        await page.screenshot(path=str(artifacts / "run-desktop-top.png"))
        phone = await (await context_of(browser, viewport=PHONE, device_scale_factor=2, is_mobile=True)).new_page()
        await phone.goto(f"{services.url}/runs/{run_id}")
        assert await image_width(phone) == doc["images"][0]["width"]
        # Readable at phone width: nothing wider than the screen.
        assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await phone.screenshot(path=str(artifacts / "run-phone.png"), full_page=True)
        await phone.screenshot(path=str(artifacts / "run-phone-top.png"))
        await phone.context.close()
        await context.close()
    assert watch.errors == []


async def test_a_script_in_model_output_is_shown_never_run(browser: Browser, tmp_path: Path) -> None:
    # The mock writes its copy from the product's own fields: whichever it quotes, it quotes the markup.
    fields = {"name": NASTY, "target_customer": NASTY, "brand_name": NASTY,
              "key_features": f"{NASTY}\n이중 진공 단열로 보온 12시간"}
    async with stack(tmp_path) as services:
        context = await context_of(browser)
        watch = Watch()
        watch.attach(context)
        page = await context.new_page()
        run_id = await start_from_form(page, services.url, fields=fields)
        await page.wait_for_selector("#live-done:not([hidden])", timeout=WAIT_MS)
        doc = await fetch_run(services.url, run_id)
        assert any(NASTY in text for text in strings_in(doc["outputs"]["copywriter"]))  # the model output carries it
        for path in (f"/runs/{run_id}", "/", f"/compare?run={run_id}&run={run_id}"):
            await page.goto(services.url + path)
            assert await page.evaluate("window.__pwned") is None, path
            assert await page.locator("img[src=x]").count() == 0, path
        await page.goto(f"{services.url}/runs/{run_id}")
        assert await page.locator("#headline").text_content() == doc["outputs"]["copywriter"]["headline"]
        assert NASTY in await page.locator("#page").inner_text()  # shown as text
        await context.close()
    # The injected <img onerror> never even requested its source.
    assert not any(url.endswith("/x") for url in watch.urls)
    assert watch.errors == []


async def test_the_page_keeps_working_after_the_media_gateway_stops(browser: Browser, tmp_path: Path) -> None:
    async with stack(tmp_path) as services:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{services.url}/api/v1/flows/p0-product-detail/runs",
                                    json={"product": _sample(), "wait": True}) as resp:
                doc = await resp.json()
            await services.media.stop()
            with pytest.raises(aiohttp.ClientConnectionError):
                async with session.get(doc["images"][0]["source_url"]):
                    pass
        context = await context_of(browser)  # a fresh context: nothing cached
        page = await context.new_page()
        await page.goto(f"{services.url}/runs/{doc['run_id']}")
        assert await page.locator("#headline").text_content() == doc["outputs"]["copywriter"]["headline"]
        assert await image_width(page) == doc["images"][0]["width"]
        await context.close()


async def test_the_export_opens_from_disk(browser: Browser, tmp_path: Path) -> None:
    async with stack(tmp_path) as services, aiohttp.ClientSession() as session:
        async with session.post(f"{services.url}/api/v1/flows/p0-product-detail/runs",
                                json={"product": _sample(), "wait": True}) as resp:
            doc = await resp.json()
        async with session.get(f"{services.url}/runs/{doc['run_id']}/export") as resp:
            zipfile.ZipFile(io.BytesIO(await resp.read())).extractall(tmp_path / "exports")
    # Every service has stopped: the folder stands alone.
    index = tmp_path / "exports" / doc["run_id"] / "index.html"
    context = await context_of(browser)
    watch = Watch()
    watch.attach(context)
    page = await context.new_page()
    await page.goto(index.as_uri())
    assert await page.locator("#headline").text_content() == doc["outputs"]["copywriter"]["headline"]
    assert await image_width(page) == doc["images"][0]["width"]
    assert await page.eval_on_selector("h1", "h => getComputedStyle(h).fontWeight") != "400"  # its CSS loaded
    await context.close()
    assert all(url.startswith("file://") for url in watch.urls), watch.urls
    assert watch.errors == []


async def test_the_console_works_with_api_keys_on(browser: Browser, tmp_path: Path) -> None:
    async with stack(tmp_path, orchestrator_env={"ORCHESTRATOR_API_KEYS": KEY}) as services:
        context = await context_of(browser)
        watch = Watch()
        watch.attach(context)
        page = await context.new_page()
        await page.goto(services.url + "/")
        await page.fill("#key", "not-the-key")
        await page.click("#login-form button[type=submit]")
        await page.wait_for_selector("#login-error:not([hidden])")
        await page.fill("#key", KEY)
        await page.click("#login-form button[type=submit]")
        await page.wait_for_selector("#run-form")  # entered once: the console
        run_id = await start_from_form(page, services.url)
        await page.wait_for_selector("#live-done:not([hidden])", timeout=WAIT_MS)
        assert await live_rows(page) == {role: "succeeded" for role in ROLES}
        await page.click("#live-page")
        await page.wait_for_url(f"**/runs/{run_id}")
        doc = await fetch_run(services.url, run_id, authorization=f"Bearer {KEY}")
        assert await page.locator("#headline").text_content() == doc["outputs"]["copywriter"]["headline"]
        assert await image_width(page) == doc["images"][0]["width"]
        assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script can read the session
        # Another browser session asks again.
        other = await (await context_of(browser)).new_page()
        await other.goto(f"{services.url}/runs/{run_id}")
        assert await other.locator("#login-form").count() == 1
        await other.context.close()
        # Forgetting the key ends this session.
        await page.click("#forget-key")
        await page.wait_for_selector("#login-form")
        await context.close()
        log = await asyncio.to_thread(services.orchestrator.log_path.read_text, "utf-8")
    assert not any(KEY in url for url in watch.urls)
    assert sum(KEY in body for body in watch.bodies) == 1  # sent once, in the session request's body
    assert KEY not in log
    assert [e for e in watch.errors if "401" not in e] == []  # the key form itself answers 401


def _sample() -> dict[str, Any]:
    path = Path(__file__).resolve().parents[2] / "orchestrator" / "samples" / "ko_tumbler.json"
    sample: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return sample


def strings_in(value: Any) -> list[str]:
    """Every string inside a decoded JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []
