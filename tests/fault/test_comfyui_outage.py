"""ComfyUI going away and coming back: waiting jobs fail fast while it is unreachable (one shared
connection attempt, not one connect timeout per job), and once it is back the next job runs at once
instead of waiting out the socket's reconnect backoff; `/readyz` follows the WebSocket.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.fakes.comfyui import FakeComfyUI
from tests.fault.test_comfyui_faults import _stalling_server
from tests.media_gateway.conftest import SMOKE, Client, gateway_config, running_gateway

# Bounds each request so a hang fails the test; the configured timeouts below are far larger, so a
# gateway that waited on them would fail here, whatever the speed of the machine.
HARNESS_S = 30.0
HUGE_S = 600.0


async def _generate(client: Client, body: dict[str, Any]) -> tuple[int, Any]:
    async with asyncio.timeout(HARNESS_S):
        status, payload, _ = await client.generate(body)
    return status, payload


async def test_while_comfyui_is_down_a_full_queue_of_waiting_jobs_fails_fast(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    # A connect timeout and a job deadline of ten minutes: only a health gate answers within the harness.
    config = gateway_config(tmp_path / "s", comfyui_url=fake.url, live_timeout=HUGE_S, connect_timeout_s=HUGE_S,
                            max_in_flight=2, max_queue=16, reconnect_min_s=HUGE_S, reconnect_max_s=HUGE_S)
    async with running_gateway(config) as client:
        status, job = await _generate(client, SMOKE)
        assert status == 200, job
        await fake.crash()
        # Nine jobs at once: two would take ComfyUI's slots, the rest wait in the gateway for them.
        answers = await asyncio.gather(*(_generate(client, {**SMOKE, "seed": n}) for n in range(9)))
        assert [status for status, _ in answers] == [503] * 9, answers
        assert {body["error"]["code"] for _, body in answers} == {"provider_unavailable"}
        assert all(body["error"]["details"]["websocket"] == "down" for _, body in answers), answers
        status, ready, _ = await client.call("GET", "/readyz")
        assert status == 503 and ready["error"]["code"] == "not_ready"
        status, held, _ = await client.call("GET", "/metrics")
        assert status == 200
        # Nothing is held after the failures: the next jobs are admitted (and fail fast) again.
        status, again = await _generate(client, SMOKE)
        assert status == 503 and again["error"]["code"] == "provider_unavailable"


async def test_after_a_comfyui_restart_the_next_job_does_not_wait_out_the_reconnect_backoff(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    # The socket's backoff is ten minutes: after the restart only a reconnect made on demand can serve the job.
    config = gateway_config(tmp_path / "s", comfyui_url=fake.url, live_timeout=HUGE_S, reconnect_min_s=HUGE_S,
                            reconnect_max_s=HUGE_S)
    async with running_gateway(config) as client:
        status, job = await _generate(client, SMOKE)
        assert status == 200, job
        connects = fake.ws_connects
        await fake.crash()
        status, down = await _generate(client, SMOKE)
        assert status == 503 and down["error"]["code"] == "provider_unavailable"
        await fake.revive()
        status, job = await _generate(client, SMOKE)
        assert status == 200 and job["status"] == "succeeded", job
        assert fake.ws_connects == connects + 1
        status, ready, _ = await client.call("GET", "/readyz")
        assert status == 200 and ready["providers"]["comfyui"]["websocket"] == "connected", ready


async def test_readyz_waits_for_the_websocket_not_only_system_stats(fake: FakeComfyUI, tmp_path: Path) -> None:
    fake.refuse_ws = True  # HTTP answers, the event socket does not: no job could be followed
    config = gateway_config(tmp_path / "s", comfyui_url=fake.url, connect_timeout_s=2.0)
    async with running_gateway(config) as client:
        status, body, _ = await client.call("GET", "/readyz")
        assert status == 503 and body["error"]["code"] == "not_ready", body
        assert body["error"]["details"]["websocket"] == "down"
        assert fake.calls("GET", "/system_stats")
        fake.refuse_ws = False
        status, body, _ = await client.call("GET", "/readyz")
        assert status == 200, body
        assert body["providers"]["comfyui"]["websocket"] == "connected"
        assert body["providers"]["mock"]["websocket"] is None


async def test_an_unreachable_host_costs_one_connect_timeout_for_every_waiting_job(tmp_path: Path) -> None:
    # A host that takes the connection and never answers the upgrade: each attempt runs into its timeout.
    async with _stalling_server() as stall:
        config = gateway_config(tmp_path / "s", comfyui_url=stall.url, live_timeout=HUGE_S, connect_timeout_s=1.0,
                                max_in_flight=1, max_queue=16, reconnect_min_s=HUGE_S, reconnect_max_s=HUGE_S,
                                recheck_s=HUGE_S)
        async with running_gateway(config) as client:
            answers = await asyncio.gather(*(_generate(client, {**SMOKE, "seed": n}) for n in range(9)))
            assert [status for status, _ in answers] == [503] * 9, answers
            assert {body["error"]["code"] for _, body in answers} == {"provider_unavailable"}
            # All nine shared one attempt; later jobs reuse its outcome instead of dialling again.
            assert stall.accepted == 1
            status, again = await _generate(client, SMOKE)
            assert status == 503 and again["error"]["code"] == "provider_unavailable"
            assert stall.accepted == 1
