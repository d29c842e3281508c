"""A closed-loop Python load generator: the fallback when wrk is not installed.

Run as its own process, like wrk: `python -m bench.perf.pyload --url URL --body-file F -c 16 -d 5`.
It prints the same `WRK_JSON {...}` summary line as `post.lua`, so the runner reads both alike.
Slower than wrk (it tops out at a few thousand requests per second on one core), which the report says.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import msgspec

__all__ = ["extra_header", "main", "percentile", "run_fast"]

T = TypeVar("T")


def run_fast(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on uvloop when installed (the perf tools' own loop), else on asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def extra_header() -> dict[str, str]:
    """The optional `WRK_HEADER` ("Name: value"), shared with post.lua, e.g. LiteLLM's bearer key."""
    raw = os.environ.get("WRK_HEADER", "")
    name, sep, value = raw.partition(":")
    return {name.strip(): value.strip()} if sep else {}


def percentile(sorted_values: list[int], pct: float) -> int:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


async def _worker(
    session: aiohttp.ClientSession, url: str, body: bytes, stop_at: float, latencies: list[int], errors: dict[str, int]
) -> int:
    received = 0
    headers = {"content-type": "application/json", **extra_header()}
    while time.perf_counter() < stop_at:
        start = time.perf_counter_ns()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                payload = await resp.read()
                received += len(payload)
                if resp.status > 399:
                    errors["status"] += 1
        except aiohttp.ClientConnectionError:
            errors["read"] += 1
            continue
        except TimeoutError:
            errors["timeout"] += 1
            continue
        latencies.append((time.perf_counter_ns() - start) // 1000)
    return received


async def _run(url: str, body: bytes, connections: int, duration: float, timeout: float) -> dict[str, object]:
    latencies: list[int] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        began = time.perf_counter()
        stop_at = began + duration
        sizes = await asyncio.gather(
            *(_worker(session, url, body, stop_at, latencies, errors) for _ in range(connections))
        )
        elapsed = time.perf_counter() - began
    latencies.sort()
    mean = sum(latencies) / len(latencies) if latencies else 0.0
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "bytes": sum(sizes),
        "errors": errors,
        "latency_us": {
            "p50": percentile(latencies, 50),
            "p90": percentile(latencies, 90),
            "p99": percentile(latencies, 99),
            "max": latencies[-1] if latencies else 0,
            "mean": round(mean, 1),
        },
    }


def main(argv: list[str] | None = None) -> None:
    """Drive load for `--duration` seconds and print the summary line."""
    parser = argparse.ArgumentParser(prog="pyload")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("-c", "--connections", type=int, default=1)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    body = args.body_file.read_bytes()
    summary = run_fast(_run(args.url, body, args.connections, args.duration, args.timeout))
    print("WRK_JSON " + msgspec.json.encode(summary).decode(), flush=True)


if __name__ == "__main__":
    main()
