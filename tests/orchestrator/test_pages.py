"""The pages over real HTTP: console, run page, comparison, export, error pages, escaping and CSP.
(What a browser does with them is in tests/browser/.)"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orchestrator.app import create_app
from orchestrator.config import OrchestratorConfig, RunsConfig
from orchestrator.pages.security import CSP
from orchestrator.tools.processes import free_port
from tests.orchestrator.answers import PRODUCT
from tests.orchestrator.conftest import client_config
from tests.orchestrator.inprocess import mock_gateway_apps, serve_app

RUNS = "/api/v1/flows/p0-product-detail/runs"
HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PAGES = Path(__file__).resolve().parents[2] / "orchestrator" / "pages"
NASTY = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> 텀블러'


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[str]:
    llm_app, media_app = mock_gateway_apps(tmp_path / "media")
    async with serve_app(llm_app) as llm_url, serve_app(media_app) as media_url:
        config = OrchestratorConfig(llm_gateway=client_config(llm_url), media_gateway=client_config(media_url),
                                    runs=RunsConfig(dir=str(tmp_path / "runs")))
        async with serve_app(create_app(config)) as url:
            yield url


async def get(url: str, **kwargs: Any) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as resp:
        return resp.status, await resp.text(), {k.lower(): v for k, v in resp.headers.items()}


async def run(url: str, product: dict[str, Any] = PRODUCT) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.post(url + RUNS, json={"product": product}) as resp:
        doc: dict[str, Any] = await resp.json()
        return doc


def assert_html(headers: dict[str, str]) -> None:
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "default-src 'none'" in CSP
    assert headers["x-content-type-options"] == "nosniff"


def scripts_of(page: str) -> list[str]:
    return re.findall(r"<script\b[^>]*>", page)


async def test_the_run_page_shows_the_copy_in_the_products_language(service: str) -> None:
    doc = await run(service)
    status, page, headers = await get(f"{service}/runs/{doc['run_id']}", headers=HTML)
    assert status == 200
    assert_html(headers)
    assert '<html lang="ko">' in page
    copy = doc["outputs"]["copywriter"]
    for text in (copy["headline"], copy["subheadline"], copy["cta"]["label"], *(s["title"] for s in copy["sections"])):
        assert _escaped(text) in page
    assert f'id="headline">{_escaped(copy["headline"])}</h1>' in page
    # The inside view: every step with its provider, model and status; parallel steps marked; the raw JSON.
    for role, step in doc["steps"].items():
        assert f'data-role="{role}"' in page and f"{step['provider']} / {step['model']}" in page
    assert page.count('class="step status-succeeded parallel"') == 2
    assert 'id="raw-json"' in page and _escaped(f'"run_id": "{doc["run_id"]}"') in page
    # Reviewer issues link to the section they are about.
    for issue in doc["outputs"]["reviewer"]["issues"]:
        index = [s["section_id"] for s in copy["sections"]].index(issue["section_id"]) + 1
        assert f'href="#section-{index}"' in page and f'id="section-{index}"' in page
    assert scripts_of(page) == ['<script src="/static/console.js" defer>']


async def test_model_output_is_text_never_markup(service: str) -> None:
    # The mock writes its copy from the product's own fields: whichever it quotes, it quotes the markup.
    product = {**PRODUCT, "name": NASTY, "target_customer": NASTY, "brand_name": NASTY,
               "key_features": [NASTY, *PRODUCT["key_features"][1:]]}
    doc = await run(service, product)
    assert any(NASTY in text for text in strings_in(doc["outputs"]["copywriter"]))  # the model output carries it
    for path in (f"/runs/{doc['run_id']}", "/", f"/compare?run={doc['run_id']}&run={doc['run_id']}"):
        status, page, _ = await get(service + path, headers=HTML)
        assert status == 200, path
        assert "<script>window" not in page and "<img src=x" not in page, path
        assert _escaped(NASTY) in page
        assert all(tag.startswith('<script src="/static/console.js"') for tag in scripts_of(page)), path


async def test_a_failed_run_shows_what_finished_and_the_gateways_error(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    config = OrchestratorConfig(llm_gateway=client_config(closed), media_gateway=client_config(closed),
                                runs=RunsConfig(dir=str(tmp_path)))
    async with serve_app(create_app(config)) as url:
        doc = await run(url)
        status, page, _ = await get(f"{url}/runs/{doc['run_id']}", headers=HTML)
    assert status == 200 and doc["status"] == "failed"
    assert 'id="run-error"' in page and "Failed at brand:" in page and "<code>provider_unavailable</code>" in page
    assert _escaped(doc["error"]["message"]) in page
    assert "No copy: the copywriter step did not finish." in page
    assert page.count('<span class="badge status-skipped">skipped</span>') == 5


async def test_the_console_lists_runs_filters_them_and_loads_a_sample(service: str) -> None:
    done = await run(service)
    status, page, headers = await get(service + "/", headers=HTML)
    assert status == 200
    assert_html(headers)
    assert f'href="/runs/{done["run_id"]}"' in page and 'name="run" value="' in page
    assert page.count('data-role="') == 6  # the live panel's rows, one per step
    _, failed_only, _ = await get(service + "/?status=failed", headers=HTML)
    assert done["run_id"] not in failed_only and "No runs with status failed yet." in failed_only
    _, loaded, _ = await get(service + "/?sample=en_headphones", headers=HTML)
    assert '<option value="en_headphones" selected>' in loaded and 'name="language" required' in loaded
    assert 'value="en"' in loaded


@pytest.mark.parametrize("path", ["/?status=bogus", "/?sample=nope", "/compare?run=x", "/runs/nope",
                                  "/runs/20250101T000000Z-deadbeef", "/runs/20250101T000000Z-deadbeef/export"])
async def test_browsers_get_error_pages_programs_get_the_envelope(service: str, path: str) -> None:
    status, page, headers = await get(service + path, headers=HTML)
    assert status in (400, 404)
    assert_html(headers)
    assert f"<h1>{status} " in page
    status_json, body, headers_json = await get(service + path)
    assert status_json == status and headers_json["content-type"] == "application/json"
    assert '"error"' in body


async def test_compare_shows_two_runs_side_by_side(service: str) -> None:
    first, second = await run(service), await run(service)
    status, page, headers = await get(f"{service}/compare?run={first['run_id']}&run={second['run_id']}", headers=HTML)
    assert status == 200
    assert_html(headers)
    assert page.count('<article class="column"') == 2
    for doc in (first, second):
        assert f'data-run-id="{doc["run_id"]}"' in page and f'src="{doc["images"][0]["url"]}"' in page
    # The later run's page offers the comparison with the one before it.
    _, later, _ = await get(f"{service}/runs/{second['run_id']}", headers=HTML)
    assert f"/compare?run={first['run_id']}&amp;run={second['run_id']}" in later


async def test_the_export_is_a_folder_that_needs_no_server(service: str) -> None:
    doc = await run(service)
    async with aiohttp.ClientSession() as session, session.get(f"{service}/runs/{doc['run_id']}/export") as resp:
        assert resp.status == 200 and resp.content_type == "application/zip"
        assert resp.headers["content-disposition"] == f'attachment; filename="{doc["run_id"]}.zip"'
        archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    image = doc["images"][0]
    folder = doc["run_id"]
    assert sorted(archive.namelist()) == sorted(
        f"{folder}/{name}" for name in
        ("index.html", "console.css", "favicon.svg", "run.json", f"images/{image['sha256']}.png")
    )
    index = archive.read(f"{folder}/index.html").decode()
    assert f'src="images/{image["sha256"]}.png"' in index and 'href="console.css"' in index
    assert "<script" not in index
    assert not re.search(r'(?:src|href)="(?:/|https?:)', index)  # nothing that needs a server
    assert archive.read(f"{folder}/images/{image['sha256']}.png")[:8] == b"\x89PNG\r\n\x1a\n"


async def test_the_api_page_lists_every_operation(service: str) -> None:
    status, page, headers = await get(service + "/docs", headers=HTML)
    assert status == 200
    assert_html(headers)
    _, raw, _ = await get(service + "/openapi.json")
    document = json.loads(raw)
    for path, methods in document["paths"].items():
        for method in methods:
            assert f"<code>{method.upper()} {_escaped(path)}</code>" in page, (method, path)
    assert 'id="schema-RunDocument"' in page and "<script" not in page.replace('<script src="/static/console.js"', "")


async def test_static_files_are_served_with_validators(service: str) -> None:
    status, body, headers = await get(service + "/static/console.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript") and "EventSource" in body
    status, _, _ = await get(service + "/static/console.js", headers={"if-none-match": headers["etag"]})
    assert status == 304


def test_templates_never_mark_anything_safe() -> None:
    for template in (PAGES / "templates").glob("*.html"):
        text = template.read_text("utf-8")
        assert not re.search(r"\|\s*safe|autoescape\s+false|Markup", text), template.name
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name  # no inline script
        assert " style=" not in text, template.name  # no inline style (the CSP refuses them)


def test_the_console_script_writes_text_only() -> None:
    script = (PAGES / "static" / "console.js").read_text("utf-8")
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", script)


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;").replace(
        "'", "&#39;")


def strings_in(value: Any) -> list[str]:
    """Every string inside a decoded JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []
