"""A bounded load run through the Media Gateway against a faulty ComfyUI: nothing may be lost or hang.

    python -m tests.load.media_load --requests 300 --concurrency 40

The gateway runs under uvicorn on 127.0.0.1 in live mode (SQLite job registry, a small bounded queue)
in front of the fake ComfyUI. Each request's prompt draws a fault: none, `execution_error` ([fail]),
the WebSocket dropped mid-run ([drop]) or a prompt that never finishes ([hang], ended by the deadline
and interrupted). Every request waits (`wait: true`) under `X-Request-Timeout`. The report counts
requests sent and answered, answers by status and code (429 `overloaded` when the queue is full), lost
requests and the slowest answer against the deadline. Exit status 1 if anything was lost, an answer was
a 500, or one came later than the deadline allows.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import msgspec

from media_gateway.config import MediaConfig
from tests.fakes.comfyui import FakeComfyUI
from tests.load.llm_load import LoadReport
from tests.media_gateway.conftest import GENERATE, PRODUCT, gateway_config, serve

__all__ = ["run_media_load"]

# Weighted prompt markers of the fake ComfyUI; "" = a healthy render.
FAULT_MIX: tuple[tuple[str, int], ...] = (("", 70), ("[fail] ", 12), ("[drop] ", 12), ("[hang] ", 6))


def _config(store: Path, comfyui_url: str, deadline_s: float) -> MediaConfig:
    config = gateway_config(store, comfyui_url=comfyui_url, live_timeout=deadline_s)
    providers = dict(config.providers)
    # A small queue so the run also shows 429 overloaded instead of an unbounded pile.
    providers["comfyui"] = {**providers["comfyui"], "max_in_flight": 4, "max_queue": 12, "retry_after_s": 1}
    return msgspec.structs.replace(config, providers=providers)


async def _one(session: aiohttp.ClientSession, url: str, marker: str, index: int, deadline_s: float,
               report: LoadReport) -> None:
    body = {**PRODUCT, "prompt": f"{marker}load {index}", "width": 64, "height": 64}
    started = time.perf_counter()
    report.sent += 1
    async with session.post(url + GENERATE, json=body, headers={"x-request-timeout": str(deadline_s)}) as response:
        raw = await response.read()
    report.slowest_s = max(report.slowest_s, time.perf_counter() - started)
    report.answered += 1
    report.by_status[response.status] += 1
    decoded = msgspec.json.decode(raw)
    report.by_code[decoded["error"]["code"] if response.status >= 400 else "ok:" + decoded["status"]] += 1


async def run_media_load(*, requests: int, concurrency: int, deadline_s: float = 2.0, seed: int = 7) -> LoadReport:
    """Drive `requests` waited image jobs, `concurrency` at a time, through the gateway into a faulty ComfyUI."""
    report = LoadReport(deadline_s=deadline_s)
    rng = random.Random(seed)
    markers, weights = zip(*FAULT_MIX, strict=True)
    drawn = rng.choices(list(markers), list(weights), k=requests)
    fake = FakeComfyUI()
    await fake.start()
    try:
        with tempfile.TemporaryDirectory(prefix="media-load-") as store:
            async with serve(_config(Path(store), fake.url, deadline_s)) as url:
                gate = asyncio.Semaphore(concurrency)
                started = time.perf_counter()
                timeout = aiohttp.ClientTimeout(total=deadline_s + 30)
                connector = aiohttp.TCPConnector(limit=concurrency)
                async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

                    async def bounded(index: int) -> None:
                        async with gate:
                            await _one(session, url, drawn[index], index, deadline_s, report)

                    results = await asyncio.gather(*(bounded(i) for i in range(requests)), return_exceptions=True)
                report.seconds = time.perf_counter() - started
                for failure in (r for r in results if isinstance(r, BaseException)):
                    report.by_code[f"client:{type(failure).__name__}"] += 1
    finally:
        await fake.close()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="media_load", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--deadline", type=float, default=2.0, help="X-Request-Timeout of each request (s)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    report = asyncio.run(run_media_load(requests=args.requests, concurrency=args.concurrency,
                                        deadline_s=args.deadline, seed=args.seed))
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
