"""Record and replay on the Media Gateway, against the fake ComfyUI: record finished jobs (image bytes by content),
replay them with no ComfyUI at all (same images, `mode: replay`), miss clearly naming the closest recording."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from media_gateway.app import create_app
from media_gateway.config import MediaConfig
from service_common.config import ConfigError
from service_common.fixtures import canonical_key
from tests.fakes.comfyui import FakeComfyUI

from .conftest import SMOKE, Client, gateway_config, running_gateway

SEEDED = {**SMOKE, "seed": 7, "params": {"color": 3368601}}
UNSEEDED = {**SMOKE, "prompt": "no seed given", "count": 2}


def configured(store: Path, folder: Path, *, mode: str, comfyui_url: str = "http://127.0.0.1:9") -> MediaConfig:
    config = gateway_config(store, comfyui_url=comfyui_url, mode=mode)
    return msgspec.structs.replace(config, fixtures_dir=str(folder), allow_mode_header=False)


async def image_bytes(client: Client, job: dict[str, Any]) -> list[bytes]:
    found = []
    for image in job["images"]:
        async with client.session.get(image["url"]) as resp:
            assert resp.status == 200
            found.append(await resp.read())
    return found


async def test_record_then_replay_without_comfyui(fake: FakeComfyUI, tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    async with running_gateway(configured(tmp_path / "a", folder, mode="record", comfyui_url=fake.url)) as live:
        status, seeded, headers = await live.generate(SEEDED)
        assert status == 200 and headers["x-generator-mode"] == "live" and seeded["mode"] == "live"
        _, unseeded, _ = await live.generate(UNSEEDED)
        recorded = [await image_bytes(live, seeded), await image_bytes(live, unseeded)]
    prompts = len(fake.calls("POST", "/prompt"))
    assert prompts == 2

    async with running_gateway(configured(tmp_path / "b", folder, mode="replay")) as replay:
        status, again, headers = await replay.generate(SEEDED)
        assert status == 200 and headers["x-generator-mode"] == "replay"
        _, unseeded_again, _ = await replay.generate(UNSEEDED)
        replayed = [await image_bytes(replay, again), await image_bytes(replay, unseeded_again)]
        status, queued, _ = await replay.generate({**SEEDED, "wait": False})
        assert status == 202
        _, polled, _ = await replay.call("GET", f"/api/v1/media/jobs/{queued['id']}")
    assert len(fake.calls("POST", "/prompt")) == prompts  # ComfyUI was never asked
    assert replayed == recorded and len(recorded[1]) == 2
    assert again["mode"] == "replay" and again["provider"] == "comfyui" and again["workflow"] == "smoke_v1"
    # The seed the live job used, even when the client sent none (it is not part of the key).
    assert (again["seed"], unseeded_again["seed"]) == (7, unseeded["seed"])
    assert [i["sha256"] for i in again["images"]] == [i["sha256"] for i in seeded["images"]]
    assert polled["status"] in ("running", "succeeded") and polled["mode"] == "replay"


async def test_files_are_readable_and_images_content_addressed(fake: FakeComfyUI, tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    async with running_gateway(configured(tmp_path / "a", folder, mode="record", comfyui_url=fake.url)) as live:
        _, job, _ = await live.generate(UNSEEDED)
    [saved] = (folder / "jobs").glob("smoke_v1-*.json")
    text = saved.read_text()
    doc = json.loads(text)
    assert '\n  "request": ' in text
    assert doc["request"]["workflow"] == "smoke_v1" and doc["request"]["params"]["seed"] is None
    assert doc["request"]["params"]["prompt"] == "no seed given" and doc["request"]["params"]["count"] == 2
    assert (doc["role"], doc["task"], doc["provider"], doc["seed"]) == ("qa", "smoke", "comfyui", job["seed"])
    for image, info in zip(doc["images"], job["images"], strict=True):
        data = (folder / "images" / image["file"]).read_bytes()
        assert image["file"] == f"{info['sha256']}.png" == f"{hashlib.sha256(data).hexdigest()}.png"
        assert image["bytes"] == len(data) == info["bytes"]


async def test_a_miss_names_the_key_and_the_closest_recording(fake: FakeComfyUI, tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    async with running_gateway(configured(tmp_path / "a", folder, mode="record", comfyui_url=fake.url)) as live:
        await live.generate(SEEDED)
    async with running_gateway(configured(tmp_path / "b", folder, mode="replay")) as replay:
        status, body, headers = await replay.generate({**SEEDED, "params": {"color": 255}})
        other_status, other, _ = await replay.generate({**SMOKE, "task": "product_image", "role": "vision"})
        listed = await replay.call("GET", "/api/v1/media/jobs/none")
    assert status == 404 and headers["x-generator-mode"] == "replay"
    error = body["error"]
    assert error["code"] == "fixture_missing" and len(error["details"]["key"]) == 64
    assert error["details"]["closest"]["differs_in"] == ["params.color"]
    assert error["details"]["closest"]["file"].startswith("jobs/smoke_v1-")
    # Another workflow (vision routes to product_shot_v1) has nothing recorded at all.
    assert other_status == 404 and other["error"]["details"]["closest"] is None
    assert listed[0] == 404


async def test_a_tampered_image_fails_the_job_instead_of_serving_it(fake: FakeComfyUI, tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    async with running_gateway(configured(tmp_path / "a", folder, mode="record", comfyui_url=fake.url)) as live:
        await live.generate(SEEDED)
    [image] = (folder / "images").iterdir()
    image.write_bytes(image.read_bytes() + b"x")
    async with running_gateway(configured(tmp_path / "b", folder, mode="replay")) as replay:
        status, body, _ = await replay.generate(SEEDED)
    assert status == 507 and body["error"]["code"] == "storage_error"


async def test_scenarios_are_refused_when_replaying(tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    folder.mkdir()
    async with running_gateway(configured(tmp_path / "b", folder, mode="replay")) as replay:
        status, body, _ = await replay.call(
            "POST", "/api/v1/media/image/generate", SEEDED, {"x-mock-scenario": "exec_error"}
        )
    assert status == 400 and "only in mock mode" in body["error"]["message"]


def test_replay_needs_a_folder_and_complete_fixtures(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        create_app(configured(tmp_path / "s", tmp_path / "missing", mode="replay"))
    jobs = tmp_path / "fx" / "jobs"
    jobs.mkdir(parents=True)
    request = {"workflow": "smoke_v1", "params": {"seed": None}}
    doc = {"key": canonical_key(request), "request": request, "role": "qa", "task": "smoke", "provider": "comfyui",
           "seed": 1, "images": [{"file": "ab.png", "sha256": "ab", "mime_type": "image/png", "bytes": 1}]}
    (jobs / "smoke_v1-x.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="ab.png is missing"):
        create_app(configured(tmp_path / "s", tmp_path / "fx", mode="replay"))
