"""Media Gateway limits and security: body cap, size bounds, bounded job queue, X-Request-Timeout, keys, CORS,
OpenAPI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog
from starlette.routing import Route

from media_gateway.app import create_app
from media_gateway.config import MediaConfig
from service_common.auth import AuthSettings
from tests.fakes.comfyui import FakeComfyUI

from .conftest import GENERATE, PRODUCT, SMOKE, gateway_config, running_gateway

KEY = "media-key-7f3e-do-not-log"
PROMPT = "SECRET-MEDIA-PROMPT-9931 on a table"


def _with(config: MediaConfig, **changes: Any) -> MediaConfig:
    return msgspec.structs.replace(config, **changes)


def _comfy(config: MediaConfig, **settings: Any) -> MediaConfig:
    providers = dict(config.providers)
    providers["comfyui"] = {**providers["comfyui"], **settings}
    return _with(config, providers=providers)


def _error(payload: Any) -> dict[str, Any]:
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error: dict[str, Any] = payload["error"]
    assert set(error) >= {"code", "message", "details", "request_id"}
    return error


async def test_a_body_over_the_cap_is_413_with_the_envelope(tmp_path: Path) -> None:
    config = gateway_config(tmp_path / "store", mode="mock")
    async with running_gateway(config) as client:
        big = {**SMOKE, "metadata": {"note": "x" * (config.max_body_bytes + 10)}}
        status, payload, _ = await client.generate(big)
        assert status == 413
        assert _error(payload)["code"] == "payload_too_large"
        status, _, _ = await client.call("GET", "/healthz")
        assert status == 200


@pytest.mark.parametrize(
    "field",
    [{"width": 4096}, {"width": 32}, {"height": 100}, {"count": 5}, {"count": 0}, {"prompt": "p" * 8001}],
)
async def test_sizes_counts_and_prompt_outside_their_bounds_are_400(tmp_path: Path, field: dict[str, Any]) -> None:
    async with running_gateway(gateway_config(tmp_path / "store", mode="mock")) as client:
        status, payload, _ = await client.generate({**SMOKE, **field})
        assert status == 400
        error = _error(payload)
        assert error["code"] == "invalid_request"
        assert error["details"]["path"] == f"$.{next(iter(field))}"


async def test_a_full_provider_queue_answers_429_overloaded_with_retry_after(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    config = _comfy(gateway_config(tmp_path / "store", comfyui_url=fake.url), max_in_flight=1, max_queue=1,
                    retry_after_s=3)
    async with running_gateway(config) as client:
        status, running, _ = await client.generate({**PRODUCT, "prompt": "[hang] first", "wait": False})
        assert status == 202
        await fake.wait_for(lambda: fake.hanging is not None)
        status, waiting, _ = await client.generate({**PRODUCT, "prompt": "second", "wait": False})
        assert status == 202
        status, payload, headers = await client.generate({**PRODUCT, "prompt": "third", "wait": False})
        assert status == 429
        error = _error(payload)
        assert error["code"] == "overloaded" and error["details"]["max_jobs"] == 2
        assert headers["retry-after"] == "3"
        status, ready, _ = await client.call("GET", "/readyz")
        instance = {fake.url: {"websocket": "connected", "jobs": 1, "max_in_flight": 1, "queue": 1}}
        assert status == 200 and ready["providers"]["comfyui"] == {
            "jobs": 2, "max_jobs": 2, "websocket": "connected", "instances": instance,
        }
        # Mock jobs do not count against ComfyUI's queue.
        status, _, _ = await client.generate({**SMOKE, "wait": False}, mode="mock")
        assert status == 202
        # Freeing the queue lets the next job in.
        for job in (waiting, running):
            status, _, _ = await client.call("DELETE", f"/api/v1/media/jobs/{job['id']}")
            assert status == 200
        status, _, _ = await client.generate({**SMOKE, "wait": False})
        assert status == 202


async def test_request_timeout_shortens_the_job_and_releases_the_prompt(fake: FakeComfyUI, tmp_path: Path) -> None:
    async with running_gateway(gateway_config(tmp_path / "store", comfyui_url=fake.url)) as client:
        status, payload, _ = await client.call(
            "POST", GENERATE, {**PRODUCT, "prompt": "[hang] slow"}, {"x-request-timeout": "0.5"}
        )
        assert status == 504
        error = _error(payload)
        assert error["code"] == "upstream_timeout" and "0.5 s" in error["message"]
        await fake.wait_for(lambda: len(fake.interrupts) == 1)
        assert fake.interrupts == [{"prompt_id": fake.prompt_ids[0]}]
        status, job, _ = await client.call("GET", f"/api/v1/media/jobs/{error['details']['job_id']}")
        assert status == 200 and job["status"] == "failed"
        status, job, _ = await client.generate(SMOKE)
        assert status == 200 and job["status"] == "succeeded"


async def test_request_timeout_never_lengthens_the_mode_timeout(fake: FakeComfyUI, tmp_path: Path) -> None:
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url, live_timeout=0.5)
    async with running_gateway(config) as client:
        status, payload, _ = await client.call(
            "POST", GENERATE, {**PRODUCT, "prompt": "[hang] slow"}, {"x-request-timeout": "600"}
        )
        assert status == 504 and "0.5 s" in _error(payload)["message"]


@pytest.mark.parametrize("value", ["abc", "-1", "0", "inf", "1e3", ""])
async def test_an_invalid_request_timeout_is_400(tmp_path: Path, value: str) -> None:
    async with running_gateway(gateway_config(tmp_path / "store", mode="mock")) as client:
        status, payload, _ = await client.call("POST", GENERATE, SMOKE, {"x-request-timeout": value})
        assert status == 400
        assert _error(payload)["details"]["header"] == "x-request-timeout"


async def test_api_keys_guard_everything_but_health_and_the_document(tmp_path: Path) -> None:
    config = _with(gateway_config(tmp_path / "store", mode="mock"), auth=AuthSettings(api_keys=f"{KEY},other"))
    async with running_gateway(config) as client:
        status, payload, headers = await client.generate(SMOKE)
        assert status == 401 and _error(payload)["code"] == "unauthorized"
        assert headers["www-authenticate"].startswith("Bearer")
        status, payload, _ = await client.call("GET", "/api/v1/media/workflows", headers={"authorization": "Bearer no"})
        assert status == 401
        status, job, _ = await client.call("POST", GENERATE, SMOKE, {"authorization": f"Bearer {KEY}"})
        assert status == 200 and job["status"] == "succeeded"
        # Image URLs are capabilities too: fetching one needs the key.
        status, _, _ = await client.call("GET", job["images"][0]["url"].removeprefix(client.base))
        assert status == 401
        for path in ("/healthz", "/readyz", "/openapi.json", "/metrics"):
            status, _, _ = await client.call("GET", path)
            assert status == 200, path


async def test_keys_and_prompts_never_reach_info_logs(tmp_path: Path) -> None:
    config = _with(gateway_config(tmp_path / "store", mode="mock"), auth=AuthSettings(api_keys=KEY))
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(config) as client:
            body = {**SMOKE, "prompt": PROMPT, "negative_prompt": PROMPT}
            status, _, _ = await client.call("POST", GENERATE, body, {"authorization": f"Bearer {KEY}"})
            assert status == 200
            status, _, _ = await client.call("POST", GENERATE, body, {"authorization": "Bearer wrong-key-55"})
            assert status == 401
    assert logs, "the job was logged"
    text = repr(logs)
    for secret in (KEY, "wrong-key-55", "SECRET-MEDIA-PROMPT-9931"):
        assert secret not in text


async def test_cors_is_off_by_default(tmp_path: Path) -> None:
    async with running_gateway(gateway_config(tmp_path / "store", mode="mock")) as client:
        origin = {"origin": "https://evil.example", "access-control-request-method": "POST"}
        status, _, preflight = await client.call("OPTIONS", GENERATE, headers=origin)
        assert status == 405
        status, _, reply = await client.call("POST", GENERATE, SMOKE, {"origin": "https://evil.example"})
        assert status == 200
        for headers in (preflight, reply):
            assert not any(name.lower().startswith("access-control-") for name in headers)


async def test_openapi_describes_every_route_and_schema(tmp_path: Path) -> None:
    app = create_app(gateway_config(tmp_path / "store", mode="mock"))
    async with running_gateway(gateway_config(tmp_path / "store", mode="mock")) as client:
        status, doc, _ = await client.call("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    served = {(m.lower(), r.path) for r in app.routes if isinstance(r, Route) for m in (r.methods or ()) if m != "HEAD"}
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented
    assert {"ImageRequest", "Job", "ErrorEnvelope", "WorkflowList", "MediaReadiness"} <= set(
        doc["components"]["schemas"]
    )
    generate = doc["paths"][GENERATE]["post"]
    body_schema = generate["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/ImageRequest"}
    assert set(generate["responses"]) >= {"200", "202", "400", "413", "429", "504"}
    job = doc["paths"]["/api/v1/media/jobs/{job_id}"]["get"]
    assert {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}} in job["parameters"]
    assert "securitySchemes" not in doc["components"]


def test_request_bodies_carry_no_url_to_call() -> None:
    # No SSRF: ComfyUI's address comes only from config; no client-facing field could carry one.
    from shared_contracts.media import ImageRequest

    for name in ImageRequest.__struct_fields__:
        assert not any(word in name.lower() for word in ("url", "host", "base", "endpoint")), name


@pytest.mark.parametrize("image_id", ["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "ABC", "a" * 63, "a" * 65, "g" * 64])
async def test_malformed_image_ids_are_404_and_touch_no_file(tmp_path: Path, image_id: str) -> None:
    async with running_gateway(gateway_config(tmp_path / "store", mode="mock")) as client:
        status, payload, _ = await client.call("GET", f"/api/v1/media/images/{image_id}")
        assert status == 404 and _error(payload)["code"] == "not_found"

