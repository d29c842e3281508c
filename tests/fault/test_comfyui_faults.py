"""ComfyUI faults against the Media Gateway in live mode: a dropped socket, execution_error, a prompt that
never finishes, a refused connection, an HTTP stall. Each asserts the documented code, an answer within
the deadline, and that the gateway still answers afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from media_gateway.providers.comfyui_socket import ComfyUISocket
from service_common.client import HttpClient
from tests.fakes.comfyui import FakeComfyUI
from tests.media_gateway.conftest import PRODUCT, SMOKE, Client, gateway_config, running_gateway

# Every request runs under its deadline plus this; a hang fails the test instead of blocking it.
HARNESS_MARGIN = 10.0


async def _generate(client: Client, body: dict[str, Any], *, deadline: float = 20.0) -> tuple[int, Any]:
    async with asyncio.timeout(deadline + HARNESS_MARGIN):
        status, payload, _ = await client.generate(body)
    return status, payload


async def _still_answers(client: Client, *, mode: str | None = None) -> None:
    status, _, _ = await client.call("GET", "/healthz")
    assert status == 200
    status, job, _ = await client.generate(SMOKE, mode=mode)
    assert status == 200 and job["status"] == "succeeded", job


async def test_socket_dropped_mid_run_still_succeeds_from_history(fake: FakeComfyUI, tmp_path: Path) -> None:
    async with running_gateway(gateway_config(tmp_path / "s", comfyui_url=fake.url)) as client:
        status, job = await _generate(client, {**PRODUCT, "prompt": "[drop] mug"})
        assert status == 200 and job["status"] == "succeeded", job
        assert fake.ws_connects >= 2  # it reconnected
        await _still_answers(client)


async def test_socket_that_never_comes_back_is_covered_by_polling(fake: FakeComfyUI, tmp_path: Path) -> None:
    fake.refuse_ws_after_drop = True
    async with running_gateway(gateway_config(tmp_path / "s", comfyui_url=fake.url)) as client:
        status, job = await _generate(client, {**PRODUCT, "prompt": "[drop] mug"})
        assert status == 200 and job["status"] == "succeeded", job
        assert fake.calls("GET", f"/history/{fake.prompt_ids[0]}")


async def test_execution_error_is_502_upstream_error_naming_the_node(fake: FakeComfyUI, tmp_path: Path) -> None:
    async with running_gateway(gateway_config(tmp_path / "s", comfyui_url=fake.url)) as client:
        status, payload = await _generate(client, {**PRODUCT, "prompt": "[fail] mug"})
        assert status == 502
        error = payload["error"]
        assert error["code"] == "upstream_error"
        assert error["details"]["node_type"] == "KSampler"
        assert error["details"]["exception_type"] == "torch.OutOfMemoryError"
        await _still_answers(client)


async def test_a_prompt_that_never_finishes_hits_the_deadline_and_is_interrupted(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    config = gateway_config(tmp_path / "s", comfyui_url=fake.url, live_timeout=1.0)
    async with running_gateway(config) as client:
        status, payload = await _generate(client, {**PRODUCT, "prompt": "[hang] mug"}, deadline=1.0)
        assert status == 504 and payload["error"]["code"] == "upstream_timeout"
        await fake.wait_for(lambda: bool(fake.interrupts))
        # Only this prompt is interrupted, never ComfyUI's whole queue.
        assert fake.interrupts == [{"prompt_id": fake.prompt_ids[0]}]
        await fake.wait_for(lambda: fake.running is None)
        await _still_answers(client)


async def test_comfyui_refusing_connections_is_503_provider_unavailable(tmp_path: Path, refused_port: int) -> None:
    config = gateway_config(tmp_path / "s", comfyui_url=f"http://127.0.0.1:{refused_port}", connect_timeout_s=0.5)
    async with running_gateway(config) as client:
        status, payload = await _generate(client, PRODUCT)
        assert status == 503 and payload["error"]["code"] == "provider_unavailable"
        status, ready, _ = await client.call("GET", "/readyz")
        assert status == 503 and ready["error"]["code"] == "not_ready"
        await _still_answers(client, mode="mock")


class _Stall:
    """A wedged ComfyUI: accepts connections and reads, never answers. Counts the connections."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.accepted = 0
        self.changed = asyncio.Condition()


@contextlib.asynccontextmanager
async def _stalling_server() -> AsyncIterator[_Stall]:
    held: list[asyncio.StreamWriter] = []
    stall = _Stall("")

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        async with stall.changed:
            stall.accepted += 1
            stall.changed.notify_all()
        with contextlib.suppress(ConnectionError):
            await reader.read(-1)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    stall.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield stall
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_comfyui_that_accepts_and_stalls_is_504_within_the_deadline(tmp_path: Path) -> None:
    async with _stalling_server() as stall:
        config = gateway_config(tmp_path / "s", comfyui_url=stall.url, live_timeout=1.0)
        async with running_gateway(config) as client:
            status, payload = await _generate(client, PRODUCT, deadline=1.0)
            assert status == 504 and payload["error"]["code"] == "upstream_timeout"
            await _still_answers(client, mode="mock")


async def test_a_stalled_websocket_handshake_is_given_up_and_retried() -> None:
    # Without a bound on the upgrade, one wedged handshake would hold the socket loop for good, and the
    # gateway would never reconnect after ComfyUI recovers.
    async with _stalling_server() as stall:
        client = HttpClient("comfyui")
        await client.start()
        socket = ComfyUISocket(client, stall.url.replace("http", "ws", 1) + "/ws?clientId=t",
                               reconnect_min_s=0.01, reconnect_max_s=0.05, handshake_timeout_s=0.2)
        socket.ensure_started()
        try:
            async with asyncio.timeout(HARNESS_MARGIN), stall.changed:
                await stall.changed.wait_for(lambda: stall.accepted >= 3)
        finally:
            await socket.close()
            await client.close()
        assert not socket.connected.is_set()
