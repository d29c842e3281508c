"""A bounded flood of the HTTP edge of each service, with the process's RSS (and peak) before and after.

    python -m bench.load.edge_flood [--services llm_gateway,orchestrator] [--mib 64] [--slow 5000]

For each service, started as a real process on its shipped YAML (mock mode, gateways unreachable for the
orchestrator): 4 concurrent requests whose header lines grow to `--mib` MiB each, one request with a
single header line of `--mib` MiB, then `--slow` connections that start a request and never finish its
head (slowloris), held until the server closes them or 30 s pass. It prints RSS (MiB) at each point, what
the floods got back, and whether the service still answers `/healthz`. The figures in docs/reliability.md
come from this run; it is not part of `make test` (the tests flood with smaller, bounded amounts).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from tests.security._edge import POST_PATHS, SERVICES, flood_head, open_raw, rss_mib, service

__all__ = ["flood_service"]

MiB = 1024 * 1024


def peak_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


async def _slowloris(port: int, count: int, pid: int) -> tuple[float, collections.Counter[str]]:
    clients = []
    ended: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        try:
            reader, writer = await open_raw(port)
        except OSError as exc:
            ended[f"connect: {type(exc).__name__}"] += 1
            continue
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        clients.append((reader, writer))
    await asyncio.sleep(1)
    held = rss_mib(pid)

    async def _end(reader: asyncio.StreamReader) -> str:
        try:
            async with asyncio.timeout(30):
                first = await reader.read(12)
        except TimeoutError:
            return "still open after 30 s"
        except ConnectionError as exc:
            return type(exc).__name__
        return first.decode("latin-1").strip() or "closed"

    for outcome in await asyncio.gather(*(_end(reader) for reader, _ in clients)):
        ended[outcome] += 1
    for _, writer in clients:
        writer.close()
    return held, ended


async def _healthy(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def flood_service(name: str, *, mib: int, slow: int) -> None:
    """Flood one service and print its RSS at each step."""
    with tempfile.TemporaryDirectory() as folder:
        async with service(name, Path(folder)) as child:
            assert child.proc is not None
            pid = child.proc.pid
            print(f"== {name} (pid {pid})")
            print(f"RSS at start: {rss_mib(pid):.0f} MiB")
            started = time.perf_counter()
            floods = await asyncio.gather(
                *(flood_head(child.port, POST_PATHS[name], total=mib * MiB) for _ in range(4))
            )
            one = await flood_head(child.port, POST_PATHS[name], total=mib * MiB, one_line=True)
            for label, result in [*((f"lines #{i}", r) for i, r in enumerate(floods)), ("one line", one)]:
                print(f"  {label}: sent {result.sent / MiB:.1f} MiB, answer {result.answer.status}")
            print(f"RSS after 4 x {mib} MiB of header lines and one {mib} MiB line: {rss_mib(pid):.0f} MiB, "
                  f"peak {peak_mib(pid):.0f} MiB ({time.perf_counter() - started:.1f} s)")
            held, ended = await _slowloris(child.port, slow, pid)
            print(f"RSS holding {slow} half-sent heads: {held:.0f} MiB; they ended: {dict(ended)}")
            await asyncio.sleep(1)  # let the server see the last closes
            print(f"RSS after: {rss_mib(pid):.0f} MiB, peak {peak_mib(pid):.0f} MiB; "
                  f"/healthz answers: {await _healthy(child.url)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load.edge_flood", description=__doc__.split("\n")[0])
    parser.add_argument("--services", default=",".join(SERVICES))
    parser.add_argument("--mib", type=int, default=64, help="size of each header flood in MiB")
    parser.add_argument("--slow", type=int, default=5000, help="half-open connections (slowloris)")
    args = parser.parse_args(argv)
    for name in args.services.split(","):
        asyncio.run(flood_service(name, mib=args.mib, slow=args.slow))
    return 0


if __name__ == "__main__":
    sys.exit(main())
