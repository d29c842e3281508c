"""The ComfyUI provider against recorded upstream bodies (tests/fixtures/comfyui) and odd HTTP answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

from media_gateway.providers.comfyui import ComfyUIProvider, ComfyUISettings
from media_gateway.providers.comfyui_errors import execution_failure, without_paths
from media_gateway.providers.comfyui_wire import ImageRef, PromptRun, decode_history, rejection
from shared_contracts.errors import NotReady, UpstreamError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui"


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _history(name: str) -> PromptRun:
    run = PromptRun(prompt_id="p", total_nodes=7, output_nodes=())
    [entry] = decode_history.decode(_fixture(name)).values()
    run.from_history(entry)
    return run


def test_rejection_names_node_and_input_from_node_errors() -> None:
    err = rejection(_fixture("prompt_400_value_not_in_list.json"))
    assert err.code == "invalid_workflow"
    assert (err.details["node"], err.details["input"], err.details["class_type"]) == (
        "4", "ckpt_name", "CheckpointLoaderSimple"
    )
    assert "node 4" in err.message and "Value not in list" in err.message


@pytest.mark.parametrize(
    ("name", "text"),
    [("prompt_400_unknown_node.json", "FancySampler does not exist"), ("prompt_400_no_prompt.json", "No prompt")],
)
def test_rejection_without_node_errors_uses_the_top_error(name: str, text: str) -> None:
    err = rejection(_fixture(name))
    assert err.code == "invalid_workflow" and text in err.message


def test_rejection_of_a_non_json_body_still_is_invalid_workflow() -> None:
    assert rejection(b"<html>bad gateway</html>").code == "invalid_workflow"


def test_history_success_keeps_saved_outputs_and_skips_previews() -> None:
    run = _history("history_success.json")
    assert run.error is None and not run.interrupted
    assert [(i.filename, i.subfolder, i.type) for i in run.images] == [("product_shot_00007_.png", "pdp", "output")]


def test_history_error_carries_node_and_exception() -> None:
    run = _history("history_execution_error.json")
    assert run.error is not None
    assert (run.error["node_id"], run.error["exception_type"]) == ("3", "torch.OutOfMemoryError")


def test_history_interrupted_is_told_apart_by_its_last_message() -> None:
    run = _history("history_interrupted.json")
    assert run.interrupted and run.error is None


@contextlib.asynccontextmanager
async def _provider_against(routes: list[web.RouteDef]) -> AsyncIterator[ComfyUIProvider]:
    """A provider pointed at a throwaway loopback server with exactly `routes`.

    (aioresponses cannot build responses for this aiohttp version, so a real server stands in.)
    """
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = msgspec.convert({"base_url": f"http://127.0.0.1:{port}", "request_timeout_s": 5}, ComfyUISettings)
    comfy = ComfyUIProvider("comfyui", settings)
    await comfy.start()
    try:
        yield comfy
    finally:
        await comfy.close()
        await runner.cleanup()


async def test_text_plain_500_from_prompt_is_an_upstream_error() -> None:
    async def boom(request: web.Request) -> web.Response:
        return web.Response(status=500, text="500 Internal Server Error", content_type="text/plain")

    async with _provider_against([web.post("/prompt", boom)]) as provider:
        with pytest.raises(UpstreamError) as caught:
            await provider.pool[0].submit({"1": {"class_type": "EmptyImage", "inputs": {}}})
    assert caught.value.details["status"] == 500
    assert caught.value.code == "upstream_error"


async def test_view_404_with_empty_body_is_an_upstream_error() -> None:
    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404)

    async with _provider_against([web.get("/view", missing)]) as provider:
        with pytest.raises(UpstreamError):
            await provider.pool[0].download(ImageRef(filename="x.png"))


async def test_unreachable_comfyui_makes_health_not_ready() -> None:
    settings = msgspec.convert({"base_url": "http://127.0.0.1:9"}, ComfyUISettings)
    provider = ComfyUIProvider("comfyui", settings)
    await provider.start()
    try:
        with pytest.raises(NotReady):
            await provider.health(deadline=asyncio.get_running_loop().time() + 2)
    finally:
        await provider.close()


def _recorded_error(name: str) -> dict[str, Any]:
    doc = json.loads((FIXTURES / name).read_text("utf-8"))
    [frame] = [f for f in doc["frames"] if f["type"] == "execution_error"]
    data: dict[str, Any] = frame["data"]
    return data


@pytest.mark.parametrize("name", ["ws_save_outside_output.json", "ws_exec_error_alloc.json"])
def test_execution_errors_of_a_real_comfyui_reach_clients_without_server_paths(name: str) -> None:
    recorded = _recorded_error(name)
    assert "/tmp/comfyui" in json.dumps(recorded)  # the real server put its folders in
    err = execution_failure(recorded, "p")
    text = json.dumps({"message": err.message, "details": err.details})
    assert "/tmp" not in text and "traceback" not in text and "current_inputs" not in text
    assert err.details == {"node_id": recorded["node_id"], "node_type": recorded["node_type"],
                           "exception_type": recorded["exception_type"], "prompt_id": "p"}
    assert f"node {recorded['node_id']} ({recorded['node_type']})" in err.message


def test_the_save_outside_output_error_keeps_its_reason_not_its_folders() -> None:
    err = execution_failure(_recorded_error("ws_save_outside_output.json"), "p")
    assert "Saving image outside the output folder is not allowed" in err.message
    assert "full_output_folder: <path>" in err.message and "commonpath: <path>" in err.message


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ('File "/srv/comfy/nodes.py", line 3', 'File "<path>", line 3'),
        ("C:\\ComfyUI\\models\\x.ckpt missing", "<path> missing"),
        ("in ~/models/x and (/etc/passwd)", "in <path> and (<path>)"),
        ("at file:///opt/x.png", "at <path>"),
        ("sub/dir/x.png of 1/4 via http://host/view", "sub/dir/x.png of 1/4 via http://host/view"),
        ("Value 1.5 bigger than max of 1.0", "Value 1.5 bigger than max of 1.0"),
    ],
)
def test_only_absolute_paths_are_removed(text: str, kept: str) -> None:
    assert without_paths(text) == kept


def test_rejection_texts_lose_server_paths_too() -> None:
    body = {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                      "details": "", "extra_info": {}},
            "node_errors": {"4": {"class_type": "LoadImage", "dependent_outputs": ["9"], "errors": [
                {"type": "exception_during_validation", "message": "Invalid image file: /srv/comfy/input/a.png",
                 "details": "image", "extra_info": {"input_name": "image"}}]}}}
    err = rejection(json.dumps(body).encode())
    assert "/srv" not in json.dumps({"message": err.message, "details": err.details})
    assert err.details["input"] == "image" and "Invalid image file: <path>" in err.message
