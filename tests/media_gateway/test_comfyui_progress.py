"""Job progress from ComfyUI's frames: monotone, moving with every node and sampler step, 1.0 only at the end.

The unit tests fold frames recorded from a real ComfyUI 0.3.64 (tests/fixtures/comfyui/ws_*.json) into a
PromptRun; the end-to-end test follows a job's SSE stream while the fake ComfyUI runs a sampler.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest

from media_gateway.providers.comfyui_socket import Frame
from media_gateway.providers.comfyui_wire import PromptRun
from tests.fakes.comfyui import FakeComfyUI

from .conftest import PRODUCT, Client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui"


def _fold(name: str, *, frames: list[dict[str, Any]] | None = None) -> tuple[list[float], bool]:
    """Fractions reported while folding a recording's frames, and whether the run saw its end."""
    doc = json.loads((FIXTURES / name).read_text("utf-8"))
    reports: list[float] = []

    def progress(status: Literal["queued", "running"], fraction: float) -> None:
        reports.append(fraction)

    run = PromptRun(prompt_id="p", total_nodes=len(doc["graph"]), output_nodes=())
    ended = False
    for raw in frames if frames is not None else doc["frames"]:
        ended = run.apply(msgspec.convert(raw, Frame), progress)
        if ended:
            break
    return reports, ended


def _monotone(values: list[float]) -> bool:
    return all(a <= b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("name", ["ws_seed_workflow.json", "ws_progress_steps.json"])
def test_progress_moves_with_each_node_of_a_real_run_and_stays_below_one(name: str) -> None:
    reports, ended = _fold(name)
    assert ended
    assert _monotone(reports), reports
    # One step per finished node at least (four nodes, so 0.25 0.5 0.75 and more), never the end yet.
    assert len({r for r in reports if 0 < r < 1}) >= 3, reports
    assert max(reports) < 1.0


def test_sampler_steps_move_progress_within_their_node() -> None:
    reports, _ = _fold("ws_progress_steps.json")
    # Node 3 reports 0..3 of 4 between 2/3 and 3/3 of the graph's nodes.
    inside = sorted({r for r in reports if 2 / 3 < r < 0.99})
    assert len(inside) >= 3, reports


def test_a_fully_cached_run_counts_its_cached_nodes() -> None:
    reports, ended = _fold("ws_seed_workflow_cached.json")
    assert ended and _monotone(reports)
    assert reports[-1] == pytest.approx(0.99)


def test_late_or_repeated_frames_never_move_progress_back() -> None:
    doc = json.loads((FIXTURES / "ws_seed_workflow.json").read_text("utf-8"))
    frames = doc["frames"]
    # A progress_state of an earlier node, resent after later ones ran (as after a reconnect), changes nothing.
    early = next(f for f in frames if f["type"] == "progress_state")
    ending = frames[-1]
    shuffled = [*frames[:-1], early, {"type": "executing", "data": {"node": "1", "prompt_id": "p"}}, ending]
    reports, ended = _fold("ws_seed_workflow.json", frames=shuffled)
    assert ended and _monotone(reports), reports


async def _sse(client: Client, job_id: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    async with client.session.get(f"{client.base}/api/v1/media/jobs/{job_id}/events") as resp:
        event = ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                found.append((event, msgspec.json.decode(line[6:])))
    return found


async def test_the_job_and_its_event_stream_report_sampler_progress(gateway: Client, fake: FakeComfyUI) -> None:
    fake.hold = True  # the prompt waits in ComfyUI's queue until the stream is open
    status, job, _ = await gateway.generate({**PRODUCT, "wait": False, "params": {"steps": 20}})
    assert status == 202
    await fake.wait_for(lambda: len(fake.pending) == 1)
    stream = gateway.session.get(f"{gateway.base}/api/v1/media/jobs/{job['id']}/events")
    async with stream as resp:
        first = [await resp.content.readline(), await resp.content.readline()]
        assert first[0] == b"event: progress\n"
        fake.release()
        rest = (await resp.read()).decode()
    events: list[tuple[str, Any]] = [("progress", msgspec.json.decode(first[1][6:]))]
    name = ""
    for line in rest.splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, msgspec.json.decode(line[6:])))
    values = [data["progress"] for name, data in events if name == "progress"]
    assert _monotone(values), values
    # Each of the 20 sampler steps moves the job; nothing reaches 1.0 before the final event.
    assert len({v for v in values if 0 < v < 1}) >= 20, values
    assert max(values) < 1.0
    final_name, final = events[-1]
    assert final_name == "job" and final["status"] == "succeeded" and final["progress"] == 1.0
    status, polled, _ = await gateway.call("GET", f"/api/v1/media/jobs/{job['id']}")
    assert polled["progress"] == 1.0
