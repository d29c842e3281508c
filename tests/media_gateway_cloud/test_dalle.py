"""DalleProvider against recorded OpenAI Images payloads."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import msgspec
import pytest
from aioresponses import aioresponses
from PIL import Image

from media_gateway.providers.dalle import DalleProvider, DalleSettings, closest_size
from service_common.config import ConfigError, convert_section
from shared_contracts.errors import RateLimited, UpstreamError, UpstreamRejected, UpstreamUnauthorized
from tests.llm_gateway_cloud._support import KEY, fixture, sent

from ._support import Progress, render_call

URL = "https://api.openai.com/v1/images/generations"


@pytest.fixture
async def dalle() -> AsyncIterator[DalleProvider]:
    provider = DalleProvider("dalle", DalleSettings(api_key=KEY, model="image-model"))
    await provider.start()
    yield provider
    await provider.close()


async def test_request_asks_for_b64_json_at_the_closest_size(dalle: DalleProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("dalle", "generation_b64.json"))
    await dalle.render(render_call(options={"quality": "hd", "style": "natural"}), progress=Progress())
    body, headers = sent(upstream, "POST", URL)
    assert headers["authorization"] == f"Bearer {KEY}"
    assert body == {
        "model": "image-model",
        "prompt": "Aurora kettle, studio product photo\n\nAvoid: text, watermark",
        "n": 1,
        "size": "1792x1024",
        "response_format": "b64_json",
        "quality": "hd",
        "style": "natural",
    }


async def test_image_bytes_come_back_decoded(dalle: DalleProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("dalle", "generation_b64.json"))
    progress = Progress()
    images = await dalle.render(render_call(), progress=progress)
    assert [i.mime_type for i in images] == ["image/png"]
    expected = base64.b64decode(msgspec.json.decode(fixture("dalle", "generation_b64.json"))["data"][0]["b64_json"])
    assert images[0].data == expected
    assert Image.open(io.BytesIO(images[0].data)).size == (56, 32)
    assert progress.reports == [("running", 0.0), ("running", 1.0)]


async def test_count_above_the_per_call_limit_makes_several_calls(dalle: DalleProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("dalle", "generation_b64.json"), repeat=True)
    progress = Progress()
    images = await dalle.render(render_call(count=3), progress=progress)
    assert len(images) == 3
    assert progress.reports == [("running", 0.0), ("running", 1 / 3), ("running", 2 / 3), ("running", 1.0)]


async def test_gpt_image_models_without_response_format(upstream: aioresponses) -> None:
    settings = DalleSettings(
        api_key=KEY,
        model="image-model",
        sizes=["1024x1024", "1536x1024", "1024x1536"],
        max_images_per_call=4,
        send_response_format=False,
    )
    provider = DalleProvider("gpt-image", settings)
    await provider.start()
    try:
        upstream.post(URL, body=fixture("dalle", "generation_gpt_image_two.json"))
        images = await provider.render(render_call(count=2, negative_prompt=""), progress=Progress())
    finally:
        await provider.close()
    body, _ = sent(upstream, "POST", URL)
    assert "response_format" not in body
    assert (body["n"], body["size"], body["prompt"]) == (2, "1536x1024", "Aurora kettle, studio product photo")
    assert [i.mime_type for i in images] == ["image/jpeg", "image/jpeg"]


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(1024, 1024, "1024x1024"), (512, 512, "1024x1024"), (1216, 832, "1792x1024"), (768, 1344, "1024x1792")],
)
def test_size_mapping(width: int, height: int, expected: str) -> None:
    assert closest_size(width, height, ["1024x1024", "1792x1024", "1024x1792"]) == expected


def test_sizes_in_yaml_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"providers\.dalle\.sizes"):
        convert_section({"api_key": KEY, "model": "m", "sizes": ["big"]}, DalleSettings, path="providers.dalle")


@pytest.mark.parametrize(
    ("status", "vendor", "name", "error", "retryable"),
    [
        (400, "dalle", "error_400_content_policy.json", UpstreamRejected, False),
        (429, "dalle", "error_429_rate_limit_exceeded.json", RateLimited, True),
        (429, "openai", "error_429_insufficient_quota.json", UpstreamRejected, False),
        (401, "openai", "error_401_invalid_api_key.json", UpstreamUnauthorized, False),
        (500, "openai", "error_429_rate_limit_exceeded.json", UpstreamError, True),
    ],
)
async def test_errors(
    dalle: DalleProvider,
    upstream: aioresponses,
    status: int,
    vendor: str,
    name: str,
    error: type[Exception],
    retryable: bool,
) -> None:
    upstream.post(URL, status=status, body=fixture(vendor, name))
    with pytest.raises(error) as caught:
        await dalle.render(render_call(), progress=Progress())
    assert type(caught.value) is error
    assert caught.value.retryable is retryable


async def test_content_policy_names_the_code(dalle: DalleProvider, upstream: aioresponses) -> None:
    upstream.post(URL, status=400, body=fixture("dalle", "error_400_content_policy.json"))
    with pytest.raises(UpstreamRejected) as caught:
        await dalle.render(render_call(), progress=Progress())
    assert caught.value.details["code"] == "content_policy_violation"
    assert "safety system" in caught.value.message


async def test_url_only_answer_or_garbage_is_an_upstream_error(dalle: DalleProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=b'{"created": 1, "data": [{"url": "https://example.invalid/a.png"}]}')
    with pytest.raises(UpstreamError, match="without b64_json"):
        await dalle.render(render_call(), progress=Progress())
    upstream.post(URL, body=b'{"created": 1, "data": [{"b64_json": "aGVsbG8="}]}')
    with pytest.raises(UpstreamError, match="not PNG, JPEG or WebP"):
        await dalle.render(render_call(), progress=Progress())


def test_missing_key_refuses_to_start() -> None:
    with pytest.raises(
        ConfigError, match="providers.dalle.api_key: empty; set the environment variable OPENAI_API_KEY"
    ):
        DalleProvider("dalle", DalleSettings(model="image-model"))
    assert KEY not in repr(DalleSettings(api_key=KEY, model="m"))
