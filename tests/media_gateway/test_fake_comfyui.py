"""The fake ComfyUI against frames recorded from a real ComfyUI 0.3.64 (tests/fixtures/comfyui/ws_*.json).

The same graph is posted to the fake and the frames its owner socket receives are compared with the
recording: frame order, the nodes each frame names, `progress_state` states, and the keys of every frame.
Timestamps, ids and file names differ and are left out.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from tests.fakes.comfyui import FakeComfyUI

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui"


def _recording(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text("utf-8"))
    return doc


def _shape(frame: dict[str, Any]) -> tuple[Any, ...]:
    """What must match between the real server and the fake: type, the nodes named, states and keys."""
    kind, data = frame["type"], frame["data"]
    keys = tuple(sorted(data))
    match kind:
        case "status":
            return kind, data["status"]["exec_info"]["queue_remaining"]
        case "execution_cached":
            return kind, keys, tuple(sorted(data["nodes"]))
        case "progress_state":
            nodes = {n: (s["state"], sorted(s)) for n, s in data["nodes"].items()}
            return kind, keys, json.dumps(nodes, sort_keys=True)
        case "executing":
            return kind, keys, data["node"]
        case "executed":
            return kind, keys, data["node"], len(data["output"]["images"])
        case "progress":
            return kind, keys, data["value"], data["max"]
        case "execution_error":
            return kind, keys, data["node_id"], data["node_type"], tuple(data["executed"]), data["exception_type"]
    return kind, keys


async def _run(fake: FakeComfyUI, graph: dict[str, Any]) -> list[dict[str, Any]]:
    """Post `graph` with a client id and return the text frames that socket got until `executing` null."""
    frames: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{fake.url}/ws?clientId=conf") as ws:
        await ws.receive_json()  # the handshake's status frame
        async with session.post(f"{fake.url}/prompt", json={"prompt": graph, "client_id": "conf"}) as resp:
            assert resp.status == 200, await resp.text()
        async with asyncio.timeout(30):
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    frames.append(json.loads(message.data))
                    if frames[-1]["type"] == "executing" and frames[-1]["data"]["node"] is None:
                        break
    return frames


@pytest.mark.parametrize("name", ["ws_seed_workflow.json", "ws_save_outside_output.json"])
async def test_the_fake_sends_the_frames_a_real_comfyui_sends(fake: FakeComfyUI, name: str) -> None:
    recorded = _recording(name)
    frames = await _run(fake, recorded["graph"])
    assert [_shape(f) for f in frames] == [_shape(f) for f in recorded["frames"]]


async def test_a_back_to_back_identical_prompt_is_served_from_cache_like_the_real_one(fake: FakeComfyUI) -> None:
    recorded = _recording("ws_seed_workflow_cached.json")
    first = await _run(fake, recorded["graph"])
    again = await _run(fake, recorded["graph"])
    assert [_shape(f) for f in again] == [_shape(f) for f in recorded["frames"]]
    # The cached `executed` names the file the first run wrote.
    [written] = [f for f in first if f["type"] == "executed"]
    [resent] = [f for f in again if f["type"] == "executed"]
    assert resent["data"]["output"] == written["data"]["output"]


async def test_a_sampler_reports_every_step_between_progress_state_frames(fake: FakeComfyUI) -> None:
    graph = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "mug", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 1, "steps": 4, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "shot", "images": ["8", 0]}},
    }
    frames = await _run(fake, graph)
    sampler = [f for f in frames if f["data"].get("node") == "3" or "3" in f["data"].get("nodes", {})]
    steps = [(f["data"]["value"], f["data"]["max"]) for f in sampler if f["type"] == "progress"]
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]  # as a real KSampler: 1..steps of steps
    # Each step's `progress` comes right after a `progress_state` carrying the same value.
    for index, frame in enumerate(frames):
        if frame["type"] == "progress":
            state = frames[index - 1]
            assert state["type"] == "progress_state"
            assert state["data"]["nodes"]["3"]["value"] == frame["data"]["value"]
    executing = [f["data"]["node"] for f in frames if f["type"] == "executing"]
    assert sorted(executing[:-1]) == sorted(graph) and executing[-1] is None
    for node_id, node in graph.items():  # every node runs after the nodes its inputs link to
        linked = [v[0] for v in node["inputs"].values() if isinstance(v, list)]
        assert all(executing.index(up) < executing.index(node_id) for up in linked)


async def _pixels(fake: FakeComfyUI, graph: dict[str, Any]) -> list[bytes]:
    frames = await _run(fake, graph)
    [executed] = [f for f in frames if f["type"] == "executed"]
    found = []
    for ref in executed["data"]["output"]["images"]:
        with Image.open(io.BytesIO(fake.files[(ref["type"], ref["subfolder"], ref["filename"])])) as img:
            found.append(img.tobytes())
    return found


async def test_noise_pixels_follow_the_seed_and_differ_across_a_batch(fake: FakeComfyUI) -> None:
    # Measured on the real server: seed 1 twice gives the same pixels, seed 2 others, a batch of 3 three.
    graph = _recording("ws_seed_workflow.json")["graph"]

    def seeded(seed: int, batch: int = 1) -> dict[str, Any]:
        copy = json.loads(json.dumps(graph))
        copy["2"]["inputs"]["seed"] = seed
        copy["1"]["inputs"]["batch_size"] = batch
        return copy

    [one] = await _pixels(fake, seeded(1))
    [two] = await _pixels(fake, seeded(2))
    [one_again] = await _pixels(fake, seeded(1))
    batch = await _pixels(fake, seeded(7, batch=3))
    assert one == one_again and one != two
    assert len(set(batch)) == 3


async def test_out_of_range_inputs_are_refused_with_the_real_error_body(fake: FakeComfyUI) -> None:
    graph = _recording("ws_seed_workflow.json")["graph"]
    graph["2"]["inputs"]["strength"] = 1.5
    async with aiohttp.ClientSession() as session, session.post(f"{fake.url}/prompt", json={"prompt": graph}) as r:
        assert r.status == 400
        body = await r.json()
    [error] = body["node_errors"]["2"]["errors"]
    assert (error["type"], error["message"], error["details"]) == (
        "value_bigger_than_max", "Value 1.5 bigger than max of 1.0", "strength"
    )
