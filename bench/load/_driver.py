"""What both bounded load runs share: the report, the concurrent driver and the command line.

Each request is sent with `X-Request-Timeout: <deadline>`; the report counts requests sent and
answered, answers by status and outcome, lost requests (sent, never answered) and the slowest answer.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

__all__ = ["LoadReport", "drive", "load_main"]

Request = Callable[[int], tuple[str, dict[str, Any]]]
"""`index` → (path, JSON body) of the request to send."""
Classify = Callable[[int, int, bytes], str]
"""(`index`, status, body) → the outcome it is counted under (an error code, `ok:<provider>`...)."""


@dataclass
class LoadReport:
    """What the run saw."""

    sent: int = 0
    answered: int = 0
    by_status: collections.Counter[int] = field(default_factory=collections.Counter)
    by_code: collections.Counter[str] = field(default_factory=collections.Counter)
    slowest_s: float = 0.0
    deadline_s: float = 0.0
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return self.sent - self.answered

    @property
    def ok(self) -> bool:
        """Nothing lost, no 500, and no answer later than the deadline plus a margin for the event loop."""
        return self.lost == 0 and self.by_status[500] == 0 and self.slowest_s <= self.deadline_s + 2.0

    def render(self) -> str:
        lines = [
            f"sent {self.sent}, answered {self.answered}, lost {self.lost} in {self.seconds:.1f}s",
            f"slowest answer {self.slowest_s:.2f}s (deadline {self.deadline_s:g}s)",
            "by status: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.by_status.items())),
            "by outcome: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.by_code.items())),
            "result: " + ("OK" if self.ok else "FAILED"),
        ]
        return "\n".join(lines)


async def drive(
    url: str, *, requests: int, concurrency: int, deadline_s: float, request: Request, classify: Classify
) -> LoadReport:
    """Send `requests` POSTs to the service at `url`, `concurrency` at a time, and report what came back."""
    report = LoadReport(deadline_s=deadline_s)
    gate = asyncio.Semaphore(concurrency)
    headers = {"x-request-timeout": str(deadline_s)}

    async def one(session: aiohttp.ClientSession, index: int) -> None:
        path, body = request(index)
        async with gate:
            started = time.perf_counter()
            report.sent += 1
            async with session.post(url + path, json=body, headers=headers) as response:
                raw = await response.read()
            report.slowest_s = max(report.slowest_s, time.perf_counter() - started)
            report.answered += 1
            report.by_status[response.status] += 1
            report.by_code[classify(index, response.status, raw)] += 1

    begun = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=deadline_s + 30)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        results = await asyncio.gather(*(one(session, i) for i in range(requests)), return_exceptions=True)
    report.seconds = time.perf_counter() - begun
    for failure in (r for r in results if isinstance(r, BaseException)):
        report.by_code[f"client:{type(failure).__name__}"] += 1
    return report


def load_main(
    argv: Sequence[str] | None,
    run: Callable[..., Coroutine[Any, Any, LoadReport]],
    *,
    prog: str,
    doc: str,
    requests: int,
    concurrency: int,
    deadline_s: float,
) -> int:
    """The command line of a load module: run it, print the report; exit 1 unless the report is ok."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    parser.add_argument("--requests", type=int, default=requests)
    parser.add_argument("--concurrency", type=int, default=concurrency)
    parser.add_argument("--deadline", type=float, default=deadline_s, help="X-Request-Timeout of each request (s)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    report = asyncio.run(run(requests=args.requests, concurrency=args.concurrency,
                             deadline_s=args.deadline, seed=args.seed))
    print(report.render())
    sys.stdout.flush()
    return 0 if report.ok else 1
