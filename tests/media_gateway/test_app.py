"""The HTTP surface in mock mode: images, serving headers, validation, workflows, and mock/live shape parity."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from PIL import Image
from yarl import URL

from tests.fakes.comfyui import FakeComfyUI

from .conftest import GENERATE, PRODUCT, Client, gateway_config, running_gateway

IMAGES = "/api/v1/media/images/"


@pytest.fixture
async def mock_gateway(tmp_path: Path) -> AsyncIterator[Client]:
    async with running_gateway(gateway_config(tmp_path / "store", mode="mock")) as client:
        yield client


async def test_mock_job_serves_a_png_of_the_requested_size(mock_gateway: Client) -> None:
    status, job, _ = await mock_gateway.generate({**PRODUCT, "width": 320, "height": 200, "count": 2})
    assert status == 200, job
    assert (job["status"], job["mode"], job["provider"], job["progress"]) == ("succeeded", "mock", "mock", 1.0)
    assert len(job["images"]) == 2 and job["images"][0]["id"] != job["images"][1]["id"]
    for image in job["images"]:
        async with mock_gateway.session.get(image["url"]) as resp:
            data = await resp.read()
        with Image.open(io.BytesIO(data)) as img:
            assert (img.format, img.size) == ("PNG", (320, 200))
        assert (image["width"], image["height"], image["bytes"]) == (320, 200, len(data))


async def test_mock_images_are_deterministic_per_request(mock_gateway: Client) -> None:
    _, first, _ = await mock_gateway.generate(PRODUCT)
    _, again, _ = await mock_gateway.generate(PRODUCT)
    _, other, _ = await mock_gateway.generate({**PRODUCT, "prompt": "a teapot"})
    assert first["seed"] == again["seed"]
    assert first["images"][0]["sha256"] == again["images"][0]["sha256"]
    assert other["images"][0]["sha256"] != first["images"][0]["sha256"]


async def test_image_serving_headers_and_conditional_get(mock_gateway: Client) -> None:
    _, job, _ = await mock_gateway.generate(PRODUCT)
    image = job["images"][0]
    async with mock_gateway.session.get(image["url"]) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"] == "image/png"
        assert int(resp.headers["content-length"]) == image["bytes"] == len(await resp.read())
        assert resp.headers["etag"] == f'"{image["sha256"]}"'
        assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    async with mock_gateway.session.get(image["url"], headers={"if-none-match": f'"{image["sha256"]}"'}) as resp:
        assert resp.status == 304
        assert await resp.read() == b""


@pytest.mark.parametrize(
    "raw_path",
    [
        IMAGES + "0" * 64,
        IMAGES + "nothex",
        IMAGES + "..%2F..%2F..%2Fetc%2Fpasswd",
        IMAGES + "%2E%2E%2F%2E%2E%2Fpyproject.toml",
        IMAGES + "%2Fetc%2Fpasswd",
        IMAGES + "..",
        IMAGES + "../../../pyproject.toml",
        IMAGES + "A" * 64,
    ],
)
async def test_unknown_or_malicious_image_ids_get_the_404_envelope(mock_gateway: Client, raw_path: str) -> None:
    url = URL(mock_gateway.base + raw_path, encoded=True)
    async with mock_gateway.session.get(url) as resp:
        body = await resp.json()
        assert resp.status == 404
    assert body["error"]["code"] == "not_found"
    assert set(body["error"]) == {"code", "message", "details", "request_id"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**PRODUCT, "colour": "red"}, 400, "invalid_request"),
        ({**PRODUCT, "width": 100}, 400, "invalid_request"),
        ({**PRODUCT, "count": 5}, 400, "invalid_request"),
        ({**PRODUCT, "params": {"bogus": 1}}, 400, "invalid_request"),
        ({**PRODUCT, "params": {"steps": "many"}}, 400, "invalid_request"),
        ({**PRODUCT, "params": {"prompt": "again"}}, 400, "invalid_request"),
        ({**PRODUCT, "workflow": "nope_v9"}, 404, "no_route"),
        ({"role": "vision", "task": "product_image"}, 400, "invalid_request"),
    ],
)
async def test_bad_requests_get_the_envelope(
    mock_gateway: Client, body: dict[str, Any], status: int, code: str
) -> None:
    got, payload, _ = await mock_gateway.generate(body)
    assert (got, payload["error"]["code"]) == (status, code)


async def test_oversized_and_non_json_bodies(mock_gateway: Client) -> None:
    status, body, _ = await mock_gateway.generate({**PRODUCT, "prompt": "x" * 7000, "metadata": {"k": "y" * 300_000}})
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    json_type = {"content-type": "application/json"}
    async with mock_gateway.session.post(mock_gateway.base + GENERATE, data=b"{not json", headers=json_type) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_request"


async def test_workflows_list_names_params_and_defaults_without_node_ids(mock_gateway: Client) -> None:
    status, body, _ = await mock_gateway.call("GET", "/api/v1/media/workflows")
    assert status == 200
    flows = {w["name"]: w for w in body["workflows"]}
    assert {"product_shot_v1", "smoke_v1"} <= set(flows)
    params = {p["name"]: p for p in flows["product_shot_v1"]["params"]}
    assert params["steps"]["default"] == 25 and "prompt" in params
    # The public description names each parameter's rule, never a node id or input name.
    assert all(set(p) == {"name", "default", "description", "type", "min", "max", "choices"} for p in params.values())
    assert (params["steps"]["type"], params["steps"]["min"], params["steps"]["max"]) == ("int", 1, 150)


async def test_routing_default_and_explicit_workflow(mock_gateway: Client) -> None:
    _, routed, _ = await mock_gateway.generate({**PRODUCT, "role": "brand", "task": "logo"})
    assert routed["workflow"] == "product_shot_v1"
    _, smoke, _ = await mock_gateway.generate({**PRODUCT, "task": "smoke"})
    assert smoke["workflow"] == "smoke_v1"
    _, named, _ = await mock_gateway.generate({**PRODUCT, "workflow": "smoke_v1"})
    assert named["workflow"] == "smoke_v1"


async def test_unknown_job_and_finished_job_cancel(mock_gateway: Client) -> None:
    status, body, _ = await mock_gateway.call("GET", "/api/v1/media/jobs/nope")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body, _ = await mock_gateway.call("GET", "/api/v1/media/jobs/nope/events")
    assert status == 404
    _, job, _ = await mock_gateway.generate(PRODUCT)
    status, body, _ = await mock_gateway.call("DELETE", f"/api/v1/media/jobs/{job['id']}")
    assert (status, body["error"]["code"]) == (409, "conflict")


async def test_public_base_url_prefixes_image_urls(tmp_path: Path) -> None:
    config = msgspec.structs.replace(gateway_config(tmp_path, mode="mock"), public_base_url="https://img.example.com/")
    async with running_gateway(config) as client:
        _, job, _ = await client.generate(PRODUCT)
    assert job["images"][0]["url"].startswith("https://img.example.com/api/v1/media/images/")


def _shape(value: Any) -> Any:
    """Field names and JSON types, recursively; values themselves are ignored."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


async def test_mock_and_live_jobs_have_identical_shapes(fake: FakeComfyUI, tmp_path: Path) -> None:
    async with running_gateway(gateway_config(tmp_path, comfyui_url=fake.url)) as client:
        _, live, _ = await client.generate({**PRODUCT, "seed": 3}, mode="live")
        _, mock, _ = await client.generate({**PRODUCT, "seed": 3}, mode="mock")
        _, live_202, _ = await client.generate({**PRODUCT, "wait": False}, mode="live")
        _, mock_202, _ = await client.generate({**PRODUCT, "wait": False}, mode="mock")
    assert (live["mode"], mock["mode"]) == ("live", "mock")
    assert _shape(live) == _shape(mock)
    assert set(live_202) == set(mock_202) == set(live)
