"""A bounded load run through the LLM Gateway with upstream faults injected: nothing may be lost or hang.

    python -m bench.load.llm_load --requests 2000 --concurrency 100      (or `make load`)

The gateway runs under uvicorn on 127.0.0.1 in live mode. Its primary provider is a fake Ollama that
fails a share of calls (500, 503, 429, malformed JSON, a stall past the deadline, a stream cut or an
error line mid-stream); its fallback is a healthy fake OpenAI-compatible server. The report counts
requests sent and answered, answers by status and error code, and lost requests (sent, never
answered), and the slowest answer against the deadline. Exit status 1 if anything was lost, an answer
was a 500, or one came later than the deadline allows.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from typing import Any

import msgspec

from llm_gateway.app import create_app
from llm_gateway.config import parse_gateway_config
from tests.fakes.ollama import FakeOllama, Fault
from tests.fakes.openai_compat import FakeOpenAI
from tests.fakes.serving import serve_app

from ._driver import LoadReport, drive, load_main

__all__ = ["LoadReport", "run_load"]

MODEL = "load-model"
GENERATE = "/api/v1/llm/generate"
STREAM = "/api/v1/llm/generate/stream"
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


def _request(index: int) -> tuple[str, dict[str, Any]]:
    path = STREAM if index % 5 == 0 else GENERATE
    return path, {"role": "brand", "task": "load", "messages": [{"role": "user", "content": f"request {index}"}]}


def _classify(index: int, status: int, raw: bytes) -> str:
    if status >= 400:
        return str(msgspec.json.decode(raw)["error"]["code"])
    if index % 5 == 0:
        last = raw.rstrip().rsplit(b"\n\n", 1)[-1]
        return "stream:" + last.split(b"\n", 1)[0].removeprefix(b"event: ").decode()
    return "ok:" + str(msgspec.json.decode(raw)["provider"])


async def run_load(*, requests: int, concurrency: int, deadline_s: float = 1.0, seed: int = 7) -> LoadReport:
    """Drive `requests` calls, `concurrency` at a time, through a gateway with a flaky primary upstream."""
    async with (
        _FlakyOllama(seed) as flaky,
        FakeOpenAI(models=[MODEL]) as backup,
        serve_app(create_app(_config(flaky.base_url, backup.base_url))) as url,
    ):
        return await drive(url, requests=requests, concurrency=concurrency, deadline_s=deadline_s,
                           request=_request, classify=_classify)


def main(argv: Sequence[str] | None = None) -> int:
    return load_main(argv, run_load, prog="llm_load", doc=__doc__ or "", requests=1000, concurrency=64, deadline_s=1.0)


if __name__ == "__main__":
    sys.exit(main())
