"""Live mode end to end: the gateway over real HTTP and WebSocket against the fake ComfyUI."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from PIL import Image

from tests.fakes.comfyui import INSTALL_DIR, FakeComfyUI

from .conftest import PRODUCT, REPO, SMOKE, Client, gateway_config, running_gateway


async def _png_size(client: Client, url: str) -> tuple[int, int]:
    async with client.session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(await resp.read())) as img:
            assert img.format == "PNG"
            return img.size


async def _events(client: Client, job_id: str) -> list[tuple[str, Any]]:
    """Read the job's SSE stream to its end: [(event, data), ...]."""
    found: list[tuple[str, Any]] = []
    async with client.session.get(f"{client.base}/api/v1/media/jobs/{job_id}/events") as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        event = ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                found.append((event, msgspec.json.decode(line[6:])))
    return found


def _no_global_interrupt(fake: FakeComfyUI) -> None:
    assert all(isinstance(body, dict) and body.get("prompt_id") for body in fake.interrupts)


async def test_waited_success_returns_stored_image_of_requested_size(gateway: Client, fake: FakeComfyUI) -> None:
    status, job, _ = await gateway.generate(PRODUCT)
    assert status == 200, job
    assert (job["status"], job["mode"], job["provider"], job["workflow"]) == ("succeeded", "live", "comfyui",
                                                                              "product_shot_v1")
    assert job["progress"] == 1.0 and job["error"] is None
    [image] = job["images"]
    assert image["url"].startswith(gateway.base + "/api/v1/media/images/")
    assert "/view" not in image["url"]
    assert (image["width"], image["height"]) == (256, 192)
    assert await _png_size(gateway, image["url"]) == (256, 192)
    # The socket is opened before the prompt is posted, and the prompt names that socket's client id.
    paths = [(r.method, r.path) for r in fake.received]
    assert paths.index(("GET", "/ws")) < paths.index(("POST", "/prompt"))
    ws_client = fake.calls("GET", "/ws")[0].query["clientId"]
    assert fake.calls("POST", "/prompt")[0].body["client_id"] == ws_client


async def test_polled_success_with_location_and_events(gateway: Client, fake: FakeComfyUI) -> None:
    status, job, headers = await gateway.generate({**SMOKE, "wait": False})
    assert status == 202
    assert job["status"] in ("queued", "running", "succeeded")
    assert headers["location"] == f"{gateway.base}/api/v1/media/jobs/{job['id']}"
    events = await _events(gateway, job["id"])
    final_event, final = events[-1]
    assert final_event == "job" and final["status"] == "succeeded"
    assert all(name == "progress" for name, _ in events[:-1])
    status, polled, _ = await gateway.call("GET", f"/api/v1/media/jobs/{job['id']}")
    assert status == 200 and polled["status"] == "succeeded"
    assert await _png_size(gateway, polled["images"][0]["url"]) == (128, 64)


async def test_frames_arriving_before_the_post_answers_are_not_lost(gateway: Client, fake: FakeComfyUI) -> None:
    fake.early_frames = True
    status, job, _ = await gateway.generate(PRODUCT)
    assert status == 200, job
    assert job["status"] == "succeeded" and len(job["images"]) == 1


async def test_parameters_are_injected_into_their_node_inputs(gateway: Client, fake: FakeComfyUI) -> None:
    body = {**PRODUCT, "negative_prompt": "blurry", "seed": 42, "count": 2, "params": {"steps": 30, "cfg": 5.5}}
    status, job, _ = await gateway.generate(body)
    assert status == 200, job
    graph = fake.prompts[-1]
    assert graph["6"]["inputs"]["text"] == PRODUCT["prompt"]
    assert graph["7"]["inputs"]["text"] == "blurry"
    assert graph["5"]["inputs"] == {"width": 256, "height": 192, "batch_size": 2}
    assert (graph["3"]["inputs"]["seed"], graph["3"]["inputs"]["steps"], graph["3"]["inputs"]["cfg"]) == (42, 30, 5.5)
    assert graph["4"]["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"  # the YAML default
    assert job["seed"] == 42 and len(job["images"]) == 2


async def test_seed_is_chosen_and_reported_when_absent(gateway: Client, fake: FakeComfyUI) -> None:
    status, job, _ = await gateway.generate(PRODUCT)
    assert status == 200
    assert fake.prompts[-1]["3"]["inputs"]["seed"] == job["seed"]


async def test_invalid_graph_is_invalid_workflow_naming_node_and_input(gateway: Client, fake: FakeComfyUI) -> None:
    status, body, _ = await gateway.generate({**PRODUCT, "params": {"checkpoint": "missing.safetensors"}})
    assert status == 422
    error = body["error"]
    assert error["code"] == "invalid_workflow"
    assert (error["details"]["node"], error["details"]["input"]) == ("4", "ckpt_name")
    assert "node 4" in error["message"] and "ckpt_name" in error["message"]
    assert error["request_id"]


async def test_execution_error_fails_the_job_naming_node_and_exception(gateway: Client, fake: FakeComfyUI) -> None:
    status, body, _ = await gateway.generate({**PRODUCT, "prompt": "a mug [fail]"})
    assert status == 502
    error = body["error"]
    assert error["code"] == "upstream_error"
    assert error["details"]["node_id"] == "3" and error["details"]["node_type"] == "KSampler"
    assert "torch.OutOfMemoryError" in error["message"]
    status, job, _ = await gateway.call("GET", f"/api/v1/media/jobs/{error['details']['job_id']}")
    assert job["status"] == "failed" and job["error"]["code"] == "upstream_error"


async def test_timeout_fails_the_job_and_interrupts_that_prompt(fake: FakeComfyUI, tmp_path: Path) -> None:
    config = gateway_config(tmp_path, comfyui_url=fake.url, live_timeout=1.0)
    async with running_gateway(config) as client:
        status, body, _ = await client.generate({**PRODUCT, "prompt": "a mug [hang]"})
        assert status == 504 and body["error"]["code"] == "upstream_timeout"
        job_id = body["error"]["details"]["job_id"]
        events = await _events(client, job_id)
        assert events[-1][1]["status"] == "failed"
        assert events[-1][1]["error"]["code"] == "upstream_timeout"
    assert fake.interrupts == [{"prompt_id": fake.prompt_ids[0]}]


async def test_cancel_running_job_interrupts_by_prompt_id(gateway: Client, fake: FakeComfyUI) -> None:
    status, job, _ = await gateway.generate({**PRODUCT, "prompt": "[hang]", "wait": False})
    assert status == 202
    await fake.wait_for(lambda: fake.hanging is not None)
    status, canceled, _ = await gateway.call("DELETE", f"/api/v1/media/jobs/{job['id']}")
    assert status == 200 and canceled["status"] == "canceled"
    assert fake.interrupts == [{"prompt_id": fake.prompt_ids[0]}]
    assert not fake.calls("POST", "/queue")
    status, again, _ = await gateway.call("DELETE", f"/api/v1/media/jobs/{job['id']}")
    assert status == 409 and again["error"]["code"] == "conflict"


async def test_cancel_job_queued_in_comfyui_deletes_it_from_the_queue(gateway: Client, fake: FakeComfyUI) -> None:
    # Another client's long prompt occupies ComfyUI, so ours waits in ComfyUI's queue.
    other = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
             "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "other [hang]", "images": ["1", 0]}}}
    async with aiohttp.ClientSession() as session, session.post(fake.url + "/prompt", json={"prompt": other}) as r:
        assert r.status == 200
    status, job, _ = await gateway.generate({**SMOKE, "wait": False})
    await fake.wait_for(lambda: len(fake.pending) == 1)
    status, polled, _ = await gateway.call("GET", f"/api/v1/media/jobs/{job['id']}")
    assert polled["status"] == "queued"
    status, canceled, _ = await gateway.call("DELETE", f"/api/v1/media/jobs/{job['id']}")
    assert status == 200 and canceled["status"] == "canceled"
    ours = fake.prompt_ids[1]
    assert [r.body for r in fake.calls("POST", "/queue")] == [{"delete": [ours]}]
    assert fake.pending == [] and fake.interrupts == []


async def test_jobs_over_the_in_flight_cap_wait_in_the_gateway(fake: FakeComfyUI, tmp_path: Path) -> None:
    async with running_gateway(gateway_config(tmp_path, comfyui_url=fake.url, max_in_flight=1)) as client:
        _, first, _ = await client.generate({**PRODUCT, "prompt": "[hang]", "wait": False})
        await fake.wait_for(lambda: fake.hanging is not None)
        _, second, _ = await client.generate({**PRODUCT, "wait": False})
        status, polled, _ = await client.call("GET", f"/api/v1/media/jobs/{second['id']}")
        assert polled["status"] == "queued"
        assert len(fake.calls("POST", "/prompt")) == 1
        status, canceled, _ = await client.call("DELETE", f"/api/v1/media/jobs/{second['id']}")
        assert status == 200 and canceled["status"] == "canceled"
        await client.call("DELETE", f"/api/v1/media/jobs/{first['id']}")
    assert len(fake.calls("POST", "/prompt")) == 1
    _no_global_interrupt(fake)


async def test_dropped_socket_falls_back_to_history_polling(gateway: Client, fake: FakeComfyUI) -> None:
    fake.refuse_ws_after_drop = True  # the socket stays down: only /history can finish the job
    status, job, _ = await gateway.generate({**PRODUCT, "prompt": "a mug [drop]"})
    assert status == 200, job
    assert job["status"] == "succeeded" and len(job["images"]) == 1
    assert fake.calls("GET", f"/history/{fake.prompt_ids[0]}")
    assert await _png_size(gateway, job["images"][0]["url"]) == (256, 192)


async def test_reconnected_socket_reconciles_with_history(gateway: Client, fake: FakeComfyUI) -> None:
    status, job, _ = await gateway.generate({**PRODUCT, "prompt": "a mug [drop]"})
    assert status == 200, job
    assert job["status"] == "succeeded"
    await fake.wait_for(lambda: fake.ws_connects >= 2)
    status, again, _ = await gateway.generate(PRODUCT)
    assert status == 200 and again["status"] == "succeeded"


async def test_reconnect_while_the_post_is_in_flight_still_finishes(fake: FakeComfyUI, tmp_path: Path) -> None:
    # Every frame of the prompt, its end included, is lost while the socket is down; no marker reached
    # a prompt the gateway did not know yet. Without asking /history the job would wait for its deadline.
    fake.reconnect_during_post = True
    async with running_gateway(gateway_config(tmp_path, comfyui_url=fake.url, live_timeout=5.0)) as client:
        status, job, _ = await client.generate(SMOKE)
        assert status == 200, job
        assert job["status"] == "succeeded" and len(job["images"]) == 1
    assert fake.ws_connects >= 2
    assert fake.calls("GET", f"/history/{fake.prompt_ids[0]}")


async def test_identical_resubmission_from_cache_still_gives_the_image(gateway: Client, fake: FakeComfyUI) -> None:
    body = {**PRODUCT, "seed": 7}
    _, first, _ = await gateway.generate(body)
    files = len(fake.files)
    status, second, _ = await gateway.generate(body)
    assert status == 200 and second["status"] == "succeeded"
    assert len(fake.files) == files  # ComfyUI wrote nothing new: `executed` named the old file
    assert second["images"][0]["sha256"] == first["images"][0]["sha256"]
    assert await _png_size(gateway, second["images"][0]["url"]) == (256, 192)


async def test_cached_resubmission_without_executed_frames_reads_history(gateway: Client, fake: FakeComfyUI) -> None:
    # Older ComfyUI releases skip `executed` for cached output nodes: the prompt ends with no image named.
    body = {**PRODUCT, "seed": 11}
    _, first, _ = await gateway.generate(body)
    fake.cached_executed = False
    status, second, _ = await gateway.generate(body)
    assert status == 200 and second["status"] == "succeeded", second
    assert second["images"][0]["sha256"] == first["images"][0]["sha256"]
    assert fake.calls("GET", f"/history/{fake.prompt_ids[1]}")


async def test_events_stream_progress_then_final_status(gateway: Client, fake: FakeComfyUI) -> None:
    _, job, _ = await gateway.generate({**PRODUCT, "prompt": "[hang]", "wait": False})
    await fake.wait_for(lambda: fake.hanging is not None)
    async with gateway.session.get(f"{gateway.base}/api/v1/media/jobs/{job['id']}/events") as resp:
        first = [await resp.content.readline(), await resp.content.readline()]
        assert first[0] == b"event: progress\n"
        assert msgspec.json.decode(first[1][6:])["status"] == "running"
        await gateway.call("DELETE", f"/api/v1/media/jobs/{job['id']}")
        rest = (await resp.read()).decode()
    assert rest.rstrip().split("\n")[-2] == "event: job"
    assert msgspec.json.decode(rest.rstrip().split("\n")[-1][6:])["status"] == "canceled"


async def test_readyz_checks_comfyui_system_stats(gateway: Client, fake: FakeComfyUI, tmp_path: Path) -> None:
    status, body, _ = await gateway.call("GET", "/readyz")
    assert status == 200 and body["mode"] == "live"
    assert fake.calls("GET", "/system_stats")
    async with running_gateway(gateway_config(tmp_path / "b", comfyui_url="http://127.0.0.1:9")) as down:
        status, body, _ = await down.call("GET", "/readyz")
        assert status == 503 and body["error"]["code"] == "not_ready"
        status, body, _ = await down.call("GET", "/healthz")
        assert status == 200


async def test_a_path_as_checkpoint_or_unbounded_steps_is_400_and_never_reaches_comfyui(
    gateway: Client, fake: FakeComfyUI
) -> None:
    for params, name in (({"checkpoint": "../../../../etc/passwd"}, "checkpoint"), ({"steps": 10000}, "steps")):
        status, body, _ = await gateway.generate({**PRODUCT, "params": params})
        assert status == 400, body
        assert body["error"]["code"] == "invalid_request" and body["error"]["details"]["param"] == name
        assert f"params.{name}" in body["error"]["message"]
    assert not fake.calls("POST", "/prompt")


async def test_smoke_pixels_follow_the_seed_and_count_gives_distinct_images(gateway: Client, fake: FakeComfyUI) -> None:
    async def shas(**fields: Any) -> list[str]:
        status, job, _ = await gateway.generate({**SMOKE, **fields})
        assert status == 200, job
        assert len(job["images"]) == fields.get("count", 1)
        return [image["sha256"] for image in job["images"]]

    [one] = await shas(seed=1)
    [two] = await shas(seed=2)
    [one_again] = await shas(seed=1)
    assert one != two and one == one_again
    three = await shas(seed=3, count=3)
    assert len(set(three)) == 3
    assert fake.prompts[0]["2"]["inputs"]["seed"] == 1  # the seed reached ImageAddNoise


async def test_comfyui_error_text_reaches_the_client_without_server_paths(fake: FakeComfyUI, tmp_path: Path) -> None:
    # A workflow whose SaveImage prefix leaves ComfyUI's output folder: ComfyUI fails it at run time with a
    # message naming its own folders, as the real one does.
    graph = json.loads((REPO / "config" / "workflows" / "smoke_v1.json").read_text("utf-8"))
    graph["4"]["inputs"]["filename_prefix"] = "../../escape"
    (tmp_path / "escape.json").write_text(json.dumps(graph), "utf-8")
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url)
    smoke = config.workflows["smoke_v1"]
    escape = msgspec.structs.replace(smoke, file=str(tmp_path / "escape.json"))
    config = msgspec.structs.replace(config, workflows={**config.workflows, "escape": escape})
    async with running_gateway(config) as client:
        status, body, _ = await client.generate({**SMOKE, "workflow": "escape"})
        assert status == 502, body
        error = body["error"]
        status, job, _ = await client.call("GET", f"/api/v1/media/jobs/{error['details']['job_id']}")
    sent = fake.frames(fake.prompt_ids[0])
    assert any(INSTALL_DIR in json.dumps(data) for kind, data in sent if kind == "execution_error")
    for shown in (error, job["error"]):
        assert INSTALL_DIR not in json.dumps(shown) and "traceback" not in json.dumps(shown)
        assert shown["code"] == "upstream_error"
        assert (shown["details"]["node_id"], shown["details"]["node_type"]) == ("4", "SaveImage")
        assert shown["details"]["exception_type"] == "Exception"
        assert "Saving image outside the output folder" in shown["message"]
