"""A bounded load run through the LLM Gateway with upstream faults injected: nothing may be lost or hang.

    python -m tests.load.llm_load --requests 2000 --concurrency 100      (or `make load`)

The gateway runs under uvicorn on 127.0.0.1 in live mode. Its primary provider is a fake Ollama that
fails a share of calls (500, 503, 429, malformed JSON, a stall past the deadline, a stream cut or an
error line mid-stream); its fallback is a healthy fake OpenAI-compatible server. The report counts
requests sent and answered, answers by status and error code, and lost requests (sent, never
answered), and the slowest answer against the deadline. Exit status 1 if anything was lost, an answer
was a 500, or one came later than the deadline allows.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec
import uvicorn

from llm_gateway.app import create_app
from llm_gateway.config import parse_gateway_config
from tests.fakes.ollama import FakeOllama, Fault
from tests.fakes.openai_compat import FakeOpenAI

__all__ = ["LoadReport", "run_load"]

MODEL = "load-model"
# Weighted faults of the primary upstream; None = a healthy answer.
FAULT_MIX: tuple[tuple[Fault | None, int], ...] = (
    (None, 60),
    (Fault(status=500), 8),
    (Fault(status=503), 6),
    (Fault(status=429, retry_after="0"), 6),
    (Fault(raw=b'{"model": "load-model", oops'), 5),
    (Fault(delay=30), 5),
    (Fault(cut_after=2), 5),
    (Fault(error_after=1), 5),
)


class _FlakyOllama(FakeOllama):
    """A fake Ollama whose every chat request draws a fault from FAULT_MIX."""

    def __init__(self, seed: int) -> None:
        super().__init__(models=[MODEL], reply="a steady answer from the flaky upstream")
        self._rng = random.Random(seed)
        faults, weights = zip(*FAULT_MIX, strict=True)
        self._faults, self._weights = list(faults), list(weights)

    def _take_fault(self, model: str) -> Fault | None:
        fault: Fault | None = self._rng.choices(self._faults, self._weights)[0]
        return fault


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(primary: str, backup: str) -> Any:
    return parse_gateway_config({
        "mode": "live",
        "timeouts": {"live": 30},
        "providers": {
            "flaky": {"class": "llm_gateway.providers.ollama:OllamaProvider", "base_url": primary},
            "backup": {"class": "llm_gateway.providers.openai:OpenAIProvider", "base_url": backup,
                       "key_required": False},
        },
        "retry": {"attempts": 2, "backoff_s": 0.01, "backoff_max_s": 0.05},
        # A breaker that opens would hide the faults behind instant fallbacks; here every call reaches them.
        "resilience": {"default": {"breaker": {"failure_threshold": 0},
                                   "backpressure": {"max_in_flight": 32, "max_queue": 4096}}},
        "llm_routing": {"default": {"provider": "flaky", "model": MODEL,
                                    "fallbacks": [{"provider": "backup", "model": MODEL}]}},
    })


async def _one(session: aiohttp.ClientSession, url: str, index: int, deadline_s: float, report: LoadReport) -> None:
    stream = index % 5 == 0
    path = "/api/v1/llm/generate/stream" if stream else "/api/v1/llm/generate"
    body = {"role": "brand", "task": "load", "messages": [{"role": "user", "content": f"request {index}"}]}
    started = time.perf_counter()
    report.sent += 1
    async with session.post(url + path, json=body, headers={"x-request-timeout": str(deadline_s)}) as response:
        raw = await response.read()
    report.slowest_s = max(report.slowest_s, time.perf_counter() - started)
    report.answered += 1
    report.by_status[response.status] += 1
    if response.status >= 400:
        report.by_code[msgspec.json.decode(raw)["error"]["code"]] += 1
    elif stream:
        last = raw.rstrip().rsplit(b"\n\n", 1)[-1]
        report.by_code["stream:" + last.split(b"\n", 1)[0].removeprefix(b"event: ").decode()] += 1
    else:
        report.by_code["ok:" + msgspec.json.decode(raw)["provider"]] += 1


async def run_load(*, requests: int, concurrency: int, deadline_s: float = 1.0, seed: int = 7) -> LoadReport:
    """Drive `requests` calls, `concurrency` at a time, through a gateway with a flaky primary upstream."""
    report = LoadReport(deadline_s=deadline_s)
    async with _FlakyOllama(seed) as flaky, FakeOpenAI(models=[MODEL]) as backup:
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(
            create_app(_config(flaky.base_url, backup.base_url)), host="127.0.0.1", port=port,
            log_level="warning", lifespan="on", ws="none", access_log=False,
        ))
        serving = asyncio.create_task(server.serve())
        try:
            async with asyncio.timeout(30):
                while not server.started:
                    await asyncio.sleep(0.01)
            url = f"http://127.0.0.1:{port}"
            gate = asyncio.Semaphore(concurrency)
            started = time.perf_counter()
            timeout = aiohttp.ClientTimeout(total=deadline_s + 30)
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

                async def bounded(index: int) -> None:
                    async with gate:
                        await _one(session, url, index, deadline_s, report)

                results = await asyncio.gather(*(bounded(i) for i in range(requests)), return_exceptions=True)
            report.seconds = time.perf_counter() - started
            for failure in (r for r in results if isinstance(r, BaseException)):
                report.by_code[f"client:{type(failure).__name__}"] += 1
        finally:
            server.should_exit = True
            await serving
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llm_load", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--deadline", type=float, default=1.0, help="X-Request-Timeout of each request (s)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    report = asyncio.run(run_load(requests=args.requests, concurrency=args.concurrency,
                                  deadline_s=args.deadline, seed=args.seed))
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
