"""Moving an image route to a cloud provider takes only YAML and an env key."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import pytest
from aioresponses import aioresponses

from media_gateway.app import create_app
from media_gateway.config import load_media_config
from service_common.config import ConfigError
from tests.fakes.asgi import AsgiClient
from tests.llm_gateway_cloud._support import KEY, fixture, sent, uncomment

YAML = """
mode: live
store: {dir: "${STORE}"}
mock_provider: mock
providers:
  mock: {class: "media_gateway.providers.mock:MockImageProvider"}
  dalle:
    class: "media_gateway.providers.dalle:DalleProvider"
    api_key: ${OPENAI_API_KEY}
    model: image-model
workflows:
  cloud_shot:
    provider: dalle
    description: Product photo from the OpenAI Images API.
    params:
      prompt: {}
      negative_prompt: {default: ""}
      width: {default: 1024}
      height: {default: 1024}
      count: {default: 1}
      seed: {}
    options: {quality: hd}
routing:
  - {role: vision, task: product_image, workflow: cloud_shot}
  - {workflow: cloud_shot}
"""
URL = "https://api.openai.com/v1/images/generations"


def write_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "media_gateway.yaml"
    path.write_text(YAML, encoding="utf-8")
    return path


async def test_vision_route_on_dalle_renders_and_stores_the_image(tmp_path: Path, upstream: aioresponses) -> None:
    config = load_media_config(write_yaml(tmp_path), {"OPENAI_API_KEY": KEY, "STORE": str(tmp_path / "store")})
    upstream.post(URL, body=fixture("dalle", "generation_b64.json"))
    request = {"role": "vision", "task": "product_image", "prompt": "Aurora kettle", "width": 1024, "height": 576}
    async with AsgiClient(create_app(config)) as client:
        reply = await client.post("/api/v1/media/image/generate", json=request)
        assert reply.status == 200, reply.json()
        job = reply.json()
        assert (job["status"], job["provider"], job["workflow"], job["mode"]) == (
            "succeeded",
            "dalle",
            "cloud_shot",
            "live",
        )
        image = await client.get(urlsplit(job["images"][0]["url"]).path)
    body, _ = sent(upstream, "POST", URL)
    assert (body["size"], body["quality"]) == ("1792x1024", "hd")
    recorded = msgspec.json.decode(fixture("dalle", "generation_b64.json"))["data"][0]["b64_json"]
    assert image.status == 200 and image.body == base64.b64decode(recorded)


def test_without_the_key_the_gateway_refuses_to_start(tmp_path: Path) -> None:
    config = load_media_config(write_yaml(tmp_path), {"STORE": str(tmp_path / "store")})
    with pytest.raises(
        ConfigError, match="providers.dalle.api_key: empty; set the environment variable OPENAI_API_KEY"
    ):
        create_app(config)


def test_the_shipped_commented_example_works_once_uncommented(tmp_path: Path) -> None:
    shipped_dir = Path(__file__).resolve().parents[2] / "config"
    text = (shipped_dir / "media_gateway.yaml").read_text(encoding="utf-8")
    text = uncomment(text, "dalle:", 5)
    text = uncomment(text, "cloud_shot_v1:", 6)
    rule = "- {role: vision, task: product_image, workflow: cloud_shot_v1}   # vision on DALL·E: YAML + key only"
    text = uncomment(text, rule, 1)
    # Workflow files are relative to the YAML, so they come along.
    shutil.copytree(shipped_dir / "workflows", tmp_path / "workflows")
    path = tmp_path / "media_gateway.yaml"
    path.write_text(text, encoding="utf-8")
    config = load_media_config(path, {"OPENAI_API_KEY": KEY, "MEDIA_STORE_DIR": str(tmp_path / "store")})
    assert config.workflows["cloud_shot_v1"].provider == "dalle"
    assert config.routing[0].workflow == "cloud_shot_v1"
    create_app(config)
