"""Time to first byte on a streaming endpoint, over N sequential requests on one keep-alive connection.

Run as its own process: `python -m bench.perf.ttfb --url URL --body-file F -n 300`. For each request it
records the time from sending until the first body chunk arrives (the first NDJSON line or SSE event)
and until the stream ends, then prints one `TTFB_JSON {...}` line with percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import aiohttp
import msgspec

from bench.perf.pyload import extra_header, percentile, run_fast

__all__ = ["main"]


async def _run(url: str, body: bytes, count: int, warmup: int) -> dict[str, object]:
    first: list[int] = []
    total: list[int] = []
    errors = 0
    headers = {"content-type": "application/json", "accept": "text/event-stream, application/x-ndjson",
               **extra_header()}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        for i in range(warmup + count):
            start = time.perf_counter_ns()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    chunk = await resp.content.readany()
                    got_first = time.perf_counter_ns()
                    while chunk:
                        chunk = await resp.content.readany()
                    done = time.perf_counter_ns()
                    failed = resp.status != 200
            except (aiohttp.ClientError, TimeoutError):
                failed = True
            if i < warmup:
                continue
            if failed:
                errors += 1
                continue
            first.append((got_first - start) // 1000)
            total.append((done - start) // 1000)
    first.sort()
    total.sort()

    def ms(values: list[int], pct: float) -> float:
        return round(percentile(values, pct) / 1000, 3)

    return {
        "requests": len(first),
        "errors": errors,
        "ttfb_ms": {"p50": ms(first, 50), "p90": ms(first, 90), "p99": ms(first, 99)},
        "total_ms": {"p50": ms(total, 50), "p90": ms(total, 90), "p99": ms(total, 99)},
    }


def main(argv: list[str] | None = None) -> None:
    """Measure and print the summary line."""
    parser = argparse.ArgumentParser(prog="ttfb")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("-n", "--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    summary = run_fast(_run(args.url, args.body_file.read_bytes(), args.requests, args.warmup))
    print("TTFB_JSON " + msgspec.json.encode(summary).decode(), flush=True)


if __name__ == "__main__":
    main()
