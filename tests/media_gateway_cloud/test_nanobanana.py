"""NanoBananaProvider against recorded Gemini image-generation payloads."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import msgspec
import pytest
from aioresponses import aioresponses

from media_gateway.providers.nanobanana import NanoBananaProvider, NanoBananaSettings, closest_aspect_ratio
from service_common.config import ConfigError
from shared_contracts.errors import RateLimited, UpstreamError, UpstreamRejected, UpstreamUnauthorized
from tests.llm_gateway_cloud._support import KEY, fixture, sent, sent_bodies

from ._support import Progress, render_call

BASE = "https://generativelanguage.googleapis.com/v1beta/models"
URL = f"{BASE}/image-model:generateContent"


@pytest.fixture
async def banana() -> AsyncIterator[NanoBananaProvider]:
    provider = NanoBananaProvider("nanobanana", NanoBananaSettings(api_key=KEY, model="image-model"))
    await provider.start()
    yield provider
    await provider.close()


async def test_request_has_prompt_modalities_aspect_ratio_and_seed(
    banana: NanoBananaProvider, upstream: aioresponses
) -> None:
    upstream.post(URL, body=fixture("nanobanana", "generate_image.json"))
    await banana.render(render_call(), progress=Progress())
    body, headers = sent(upstream, "POST", URL)
    assert headers["x-goog-api-key"] == KEY
    assert body == {
        "contents": [
            {"role": "user", "parts": [{"text": "Aurora kettle, studio product photo\n\nAvoid: text, watermark"}]}
        ],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "3:2"},
            "seed": 42,
        },
    }


async def test_every_part_is_scanned_for_inline_data(banana: NanoBananaProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("nanobanana", "generate_image.json"))
    images = await banana.render(render_call(), progress=Progress())
    parts = msgspec.json.decode(fixture("nanobanana", "generate_image.json"))["candidates"][0]["content"]["parts"]
    assert "text" in parts[0]  # the image is not the first part
    assert [i.mime_type for i in images] == ["image/png"]
    assert images[0].data == base64.b64decode(parts[1]["inlineData"]["data"])


async def test_workflow_options_choose_the_model_and_extra_config(upstream: aioresponses) -> None:
    provider = NanoBananaProvider("nb", NanoBananaSettings(api_key=KEY, model="image-model"))
    await provider.start()
    try:
        other = f"{BASE}/other-image-model:generateContent"
        upstream.post(other, body=fixture("nanobanana", "generate_image.json"), repeat=True)
        options = {"model": "other-image-model", "generationConfig": {"temperature": 0.4}}
        progress = Progress()
        images = await provider.render(render_call(options=options, count=2, seed=None), progress=progress)
    finally:
        await provider.close()
    assert len(images) == 2
    assert progress.reports[-1] == ("running", 1.0)
    bodies = sent_bodies(upstream, "POST", other)
    assert len(bodies) == 2
    for body in bodies:
        assert body["generationConfig"]["temperature"] == 0.4 and "seed" not in body["generationConfig"]
        assert "model" not in body


async def test_each_image_of_a_job_gets_its_own_seed(banana: NanoBananaProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("nanobanana", "generate_image.json"), repeat=True)
    await banana.render(render_call(count=3, seed=7), progress=Progress())
    assert [b["generationConfig"]["seed"] for b in sent_bodies(upstream, "POST", URL)] == [7, 8, 9]


@pytest.mark.parametrize(
    ("name", "reason", "message"),
    [
        ("text_only.json", "no_image", r"answered without an image \(I can.t create that image"),
        ("image_safety.json", "blocked", r"withheld \(IMAGE_SAFETY\)"),
        ("prompt_blocked.json", "blocked", r"prompt was blocked \(PROHIBITED_CONTENT\)"),
    ],
)
async def test_no_image_is_a_clear_rejection(
    banana: NanoBananaProvider, upstream: aioresponses, name: str, reason: str, message: str
) -> None:
    upstream.post(URL, body=fixture("nanobanana", name))
    with pytest.raises(UpstreamRejected, match=message) as caught:
        await banana.render(render_call(), progress=Progress())
    assert caught.value.details["reason"] == reason
    assert not caught.value.retryable


async def test_data_url_prefix_is_not_accepted_as_base64(banana: NanoBananaProvider, upstream: aioresponses) -> None:
    bad = (
        b'{"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", '
        b'"data": "data:image/png;base64,iVBORw0KGgo="}}]}, "finishReason": "STOP"}]}'
    )
    upstream.post(URL, body=bad)
    with pytest.raises(UpstreamError, match="not base64"):
        await banana.render(render_call(), progress=Progress())


@pytest.mark.parametrize(
    ("status", "name", "error", "retry_after"),
    [
        (400, "error_400_api_key_invalid.json", UpstreamUnauthorized, None),
        (429, "error_429_resource_exhausted.json", RateLimited, 43.0),
        (503, "error_503_unavailable.json", UpstreamError, None),
    ],
)
async def test_errors(
    banana: NanoBananaProvider,
    upstream: aioresponses,
    status: int,
    name: str,
    error: type[Exception],
    retry_after: float | None,
) -> None:
    upstream.post(URL, status=status, body=fixture("gemini", name))
    with pytest.raises(error) as caught:
        await banana.render(render_call(), progress=Progress())
    assert type(caught.value) is error
    assert caught.value.retry_after == retry_after


@pytest.mark.parametrize(
    ("width", "height", "expected"), [(1024, 1024, "1:1"), (1024, 576, "16:9"), (832, 1216, "2:3"), (2048, 864, "21:9")]
)
def test_aspect_ratio_mapping(width: int, height: int, expected: str) -> None:
    assert closest_aspect_ratio(width, height, NanoBananaSettings(api_key=KEY, model="m").aspect_ratios) == expected


def test_missing_key_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="set the environment variable GEMINI_API_KEY"):
        NanoBananaProvider("nanobanana", NanoBananaSettings(model="image-model"))
