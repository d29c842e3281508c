"""One load point: a closed-loop generator in its own process at fixed concurrency, summarised."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec

from bench.perf.processes import pinned

__all__ = ["LoadPoint", "TtfbPoint", "load_tool", "run_load", "run_ttfb"]

_HERE = Path(__file__).resolve().parent
_LUA = _HERE / "post.lua"


class LoadPoint(msgspec.Struct, kw_only=True):
    """What one run measured; latencies in milliseconds."""

    system: str
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    tool: str
    rss_mb: float | None = None
    # CPU time the server under test spent per request: comparable even when other work shares the machine.
    cpu_us_per_request: float | None = None
    added_p50_ms: float | None = None
    added_p99_ms: float | None = None
    repeats: int = 1
    rps_min: float | None = None
    rps_max: float | None = None


class TtfbPoint(msgspec.Struct, kw_only=True):
    """Time to first byte and to the end of a stream, over sequential requests."""

    system: str
    requests: int
    errors: int
    ttfb_p50_ms: float
    ttfb_p90_ms: float
    ttfb_p99_ms: float
    total_p50_ms: float
    total_p99_ms: float


class _Errors(msgspec.Struct):
    connect: int
    read: int
    write: int
    status: int
    timeout: int


class _Latency(msgspec.Struct):
    p50: int
    p90: int
    p99: int
    max: int
    mean: float


class _Summary(msgspec.Struct):
    requests: int
    duration_us: int
    bytes: int
    errors: _Errors
    latency_us: _Latency


def load_tool() -> str:
    """`wrk` when installed, else the Python generator (slower; the report names the tool)."""
    return "wrk" if shutil.which("wrk") else "pyload"


def _tagged_line(output: str, tag: str) -> bytes:
    for line in output.splitlines():
        if line.startswith(tag + " "):
            return line[len(tag) + 1 :].encode()
    raise RuntimeError(f"no {tag} line in the load generator's output:\n{output[-2000:]}")


def run_load(
    system: str,
    url: str,
    body_file: Path,
    *,
    connections: int,
    seconds: float,
    cpu: str | None,
    header: str = "",
    timeout_s: int = 10,
) -> LoadPoint:
    """Drive `url` with POSTs of `body_file` for `seconds` at `connections` and summarise."""
    tool = load_tool()
    if tool == "wrk":
        duration = max(1, math.ceil(seconds))
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", f"--timeout={timeout_s}s", "-s", str(_LUA), url]
    else:
        argv = [sys.executable, "-m", "bench.perf.pyload", "--url", url, "--body-file", str(body_file),
                "-c", str(connections), "-d", str(seconds), "--timeout", str(timeout_s)]
    done = subprocess.run(
        pinned(argv, cpu), capture_output=True, text=True, check=False,
        env={**os.environ, "WRK_BODY_FILE": str(body_file), "WRK_HEADER": header}, cwd=_HERE.parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = msgspec.json.decode(_tagged_line(done.stdout, "WRK_JSON"), type=_Summary)
    secs = summary.duration_us / 1e6
    errs = summary.errors
    return LoadPoint(
        system=system,
        connections=connections,
        requests=summary.requests,
        seconds=round(secs, 2),
        rps=round(summary.requests / secs, 1) if secs else 0.0,
        p50_ms=summary.latency_us.p50 / 1000,
        p90_ms=summary.latency_us.p90 / 1000,
        p99_ms=summary.latency_us.p99 / 1000,
        max_ms=summary.latency_us.max / 1000,
        non_2xx=errs.status,
        socket_errors=errs.connect + errs.read + errs.write + errs.timeout,
        tool=tool,
    )


class _TtfbStats(msgspec.Struct):
    p50: float
    p90: float
    p99: float


class _TtfbSummary(msgspec.Struct):
    requests: int
    errors: int
    ttfb_ms: _TtfbStats
    total_ms: _TtfbStats


def run_ttfb(
    system: str, url: str, body_file: Path, *, requests: int, cpu: str | None, header: str = ""
) -> TtfbPoint:
    """Sequential streaming requests from a separate process; time to first body byte and to the end."""
    argv = [sys.executable, "-m", "bench.perf.ttfb", "--url", url, "--body-file", str(body_file), "-n", str(requests)]
    done = subprocess.run(pinned(argv, cpu), capture_output=True, text=True, check=False, cwd=_HERE.parent.parent,
                          env={**os.environ, "WRK_HEADER": header})
    if done.returncode != 0:
        raise RuntimeError(f"ttfb client failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = msgspec.json.decode(_tagged_line(done.stdout, "TTFB_JSON"), type=_TtfbSummary)
    return TtfbPoint(
        system=system,
        requests=summary.requests,
        errors=summary.errors,
        ttfb_p50_ms=summary.ttfb_ms.p50,
        ttfb_p90_ms=summary.ttfb_ms.p90,
        ttfb_p99_ms=summary.ttfb_ms.p99,
        total_p50_ms=summary.total_ms.p50,
        total_p99_ms=summary.total_ms.p99,
    )
