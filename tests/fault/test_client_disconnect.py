"""Issue 13 item 7: a client that goes away in the middle of its request body is a cancellation, not an error.

It used to be logged as `unhandled_error` with a traceback and counted as `internal_error`; now it is one
INFO line (`request_abandoned`) and its own outcome, `client_disconnected`, in `pdp_requests_total`.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import msgspec
import pytest

from tests.security._edge import POST_PATHS, SERVICES, open_raw, service

pytestmark = pytest.mark.slow


def _count(metrics: str, outcome: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("pdp_requests_total{") and f'outcome="{outcome}"' in line
    )


@pytest.mark.parametrize("name", SERVICES)
async def test_a_client_gone_mid_body_is_one_info_line_and_its_own_outcome(name: str, tmp_path: Path) -> None:
    async with service(name, tmp_path) as child:
        _, writer = await open_raw(child.port)
        writer.write(f"POST {POST_PATHS[name]} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 4000\r\n\r\n{\"role\": \"br".encode())
        await writer.drain()
        # The server reads what was sent before it sees the close: the app runs, then finds its client gone.
        writer.close()
        await child.logged(b"request_abandoned")
        async with aiohttp.ClientSession() as session, session.get(child.url + "/metrics") as response:
            metrics = await response.text()
    lines = [msgspec.json.decode(line) for line in child.lines if line.startswith(b"{")]
    abandoned = [line for line in lines if line["event"] == "request_abandoned"]
    assert len(abandoned) == 1 and abandoned[0]["level"] == "info", abandoned
    assert abandoned[0]["outcome"] == "client_disconnected" and abandoned[0]["path"] == POST_PATHS[name]
    assert not [line for line in lines if line["level"] in ("error", "critical")], lines
    assert _count(metrics, "client_disconnected") == 1, metrics
    assert _count(metrics, "internal_error") == 0, metrics
