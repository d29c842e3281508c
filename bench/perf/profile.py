"""`make bench-profile`: sample the gateway with py-spy under wrk load and list where its CPU goes.

Starts the instant upstream and one gateway (same layout as `make bench`), drives the non-streaming
endpoint at fixed concurrency, records py-spy's folded stacks, and writes
`bench-results/profile-<mode>-c<N>.txt` (the top functions by inclusive and by own time) and `.folded`
(the raw stacks, for speedscope or flamegraph.pl).
Usage: `python -m bench.perf.profile [--mode live|mock] [--connections 64] [--seconds 10]`.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench.perf.bench import GATEWAY_PATH, gateway_argv, write_bodies
from bench.perf.load import run_load
from bench.perf.processes import Service, free_port, pinned, running

__all__ = ["main", "summarise"]

_ROOT = Path(__file__).resolve().parent.parent.parent


def _frame_name(frame: str) -> str:
    # py-spy frames look like "func (path/to/file.py:123)"; keep the function and the file's name.
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name


def summarise(folded: str, top: int = 45) -> str:
    """Inclusive and own-time percentages per function from py-spy's folded (`raw`) output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_frame_name(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] += samples
        own[frames[-1]] += samples
    if not total:
        return "no samples\n"
    lines = [f"samples: {total}", "", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "own time:"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def _py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    found = str(local) if local.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy not found: `make bench-profile` installs it into the venv")
    return found


def main(argv: list[str] | None = None) -> None:
    """Profile one gateway process under load and write the summary and flame graph."""
    parser = argparse.ArgumentParser(prog="profile")
    parser.add_argument("--mode", choices=("live", "mock"), default="live")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=_ROOT / "bench-results")
    args = parser.parse_args(argv)
    py_spy = _py_spy()
    bodies = write_bodies(args.out / "bodies")
    logs = args.out / "logs"
    up_port, gw_port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{up_port}"
    upstream = Service("upstream", [sys.executable, "-m", "bench.perf.instant_upstream", "--port", str(up_port)],
                       log_path=logs / "upstream.log", cpu="1")
    gateway = Service(f"gateway-{args.mode}", gateway_argv(gw_port), log_path=logs / f"profile-{args.mode}.log",
                      cpu="0", env={"GENERATOR_MODE": args.mode, "OLLAMA_BASE_URL": upstream_url})
    stem = args.out / f"profile-{args.mode}-c{args.connections}"
    url = f"http://127.0.0.1:{gw_port}{GATEWAY_PATH}"
    with running(upstream, f"{upstream_url}/api/version"), running(gateway, f"http://127.0.0.1:{gw_port}/healthz"):
        assert gateway.proc is not None
        run_load("warmup", url, bodies["gateway"], connections=16, seconds=2, cpu="1")
        # Load runs a little longer than sampling, so every sample sees the gateway busy.
        loader = threading.Thread(target=run_load, args=("profile", url, bodies["gateway"]),
                                  kwargs={"connections": args.connections, "seconds": args.seconds + 2, "cpu": "1"})
        loader.start()
        folded = stem.with_suffix(".folded")
        record = [py_spy, "record", "-p", str(gateway.proc.pid), "-d", str(args.seconds), "-r", str(args.rate),
                  "-f", "raw", "-o", str(folded)]
        subprocess.run(pinned(record, "1"), check=True, capture_output=True)
        loader.join()
    text = summarise(folded.read_text())
    stem.with_suffix(".txt").write_text(text)
    print(text)
    print(f"saved {stem.with_suffix('.txt')} and {folded.name} (folded stacks: speedscope or flamegraph.pl read them)")


if __name__ == "__main__":
    main()
