"""A bounded load run through the Media Gateway against a faulty ComfyUI: nothing may be lost or hang.

    python -m bench.load.media_load --requests 300 --concurrency 40

The gateway runs under uvicorn on 127.0.0.1 in live mode (SQLite job registry, a small bounded queue)
in front of the fake ComfyUI. Each request's prompt draws a fault: none, `execution_error` ([fail]),
the WebSocket dropped mid-run ([drop]) or a prompt that never finishes ([hang], ended by the deadline
and interrupted). Every request waits (`wait: true`) under `X-Request-Timeout`. The report counts
requests sent and answered, answers by status and code (429 `overloaded` when the queue is full), lost
requests and the slowest answer against the deadline. Exit status 1 if anything was lost, an answer was
a 500, or one came later than the deadline allows.
"""

from __future__ import annotations

import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from media_gateway.config import MediaConfig
from tests.fakes.comfyui import FakeComfyUI
from tests.media_gateway.conftest import GENERATE, PRODUCT, gateway_config, serve

from ._driver import LoadReport, drive, load_main

__all__ = ["run_media_load"]

# Weighted prompt markers of the fake ComfyUI; "" = a healthy render.
FAULT_MIX: tuple[tuple[str, int], ...] = (("", 70), ("[fail] ", 12), ("[drop] ", 12), ("[hang] ", 6))


def _config(store: Path, comfyui_url: str, deadline_s: float) -> MediaConfig:
    config = gateway_config(store, comfyui_url=comfyui_url, live_timeout=deadline_s)
    providers = dict(config.providers)
    # A small queue so the run also shows 429 overloaded instead of an unbounded pile.
    providers["comfyui"] = {**providers["comfyui"], "max_in_flight": 4, "max_queue": 12, "retry_after_s": 1}
    return msgspec.structs.replace(config, providers=providers)


async def run_media_load(*, requests: int, concurrency: int, deadline_s: float = 2.0, seed: int = 7) -> LoadReport:
    """Drive `requests` waited image jobs, `concurrency` at a time, through the gateway into a faulty ComfyUI."""
    markers, weights = zip(*FAULT_MIX, strict=True)
    drawn = random.Random(seed).choices(list(markers), list(weights), k=requests)

    def request(index: int) -> tuple[str, dict[str, Any]]:
        return GENERATE, {**PRODUCT, "prompt": f"{drawn[index]}load {index}", "width": 64, "height": 64}

    def classify(index: int, status: int, raw: bytes) -> str:
        decoded = msgspec.json.decode(raw)
        return str(decoded["error"]["code"]) if status >= 400 else "ok:" + str(decoded["status"])

    fake = FakeComfyUI()
    await fake.start()
    try:
        with tempfile.TemporaryDirectory(prefix="media-load-") as store:
            async with serve(_config(Path(store), fake.url, deadline_s)) as url:
                return await drive(url, requests=requests, concurrency=concurrency, deadline_s=deadline_s,
                                   request=request, classify=classify)
    finally:
        await fake.close()


def main(argv: Sequence[str] | None = None) -> int:
    return load_main(argv, run_media_load, prog="media_load", doc=__doc__ or "", requests=300, concurrency=40,
                     deadline_s=2.0)


if __name__ == "__main__":
    sys.exit(main())
