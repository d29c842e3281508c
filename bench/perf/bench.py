"""`make bench` / `make bench-compare`: the LLM Gateway under load, next to the floor and to LiteLLM.

Layout on a 2-core box: the server under test (gateway, baseline or LiteLLM) runs alone on CPU 0; the
instant upstream and the load generator share CPU 1 (together they use a few percent of it at the
gateway's rates). One server under test runs at a time. Usage:
`python -m bench.perf.bench [--compare --litellm .venv-litellm/bin/litellm] [--seconds 8] [--out bench-results]`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import secrets
import subprocess
import sys
from pathlib import Path

import msgspec

from bench.perf.load import LoadPoint, load_tool, run_load, run_ttfb
from bench.perf.processes import Service, free_port, running
from bench.perf.report import (
    MemoryPoint,
    Report,
    evaluate_targets,
    fill_added_latency,
    fill_ratios,
    render_markdown,
    write_report,
)

__all__ = ["BODIES", "GATEWAY_PATH", "gateway_argv", "main", "write_bodies"]

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent.parent
_PROMPT = "Write one line about a ceramic teapot."
_MESSAGES = [{"role": "user", "content": _PROMPT}]
# The same conversation in each system's own request format.
BODIES: dict[str, object] = {
    "ollama": {"model": "bench-model", "stream": False, "messages": _MESSAGES},
    "ollama-stream": {"model": "bench-model", "stream": True, "messages": _MESSAGES},
    "gateway": {"role": "copywriter", "task": "bench", "messages": _MESSAGES},
    "openai": {"model": "bench", "messages": _MESSAGES},
    "openai-stream": {"model": "bench", "messages": _MESSAGES, "stream": True},
}
GATEWAY_PATH = "/api/v1/llm/generate"


def write_bodies(folder: Path) -> dict[str, Path]:
    """Each request body as a file (wrk and the clients read them); name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, body in BODIES.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_bytes(msgspec.json.encode(body))
    return paths


def gateway_argv(port: int, *, module: bool = False) -> list[str]:
    """The gateway's own CLI on loopback with the bench YAML (mode and upstream come from the environment).

    `module`: `python -m llm_gateway`, so the code comes from the working folder (`--before`).
    """
    script = Path(sys.executable).parent / "llm-gateway"
    command = [str(script)] if script.exists() and not module else [sys.executable, "-m", "llm_gateway"]
    return [*command, "--host", "127.0.0.1", "--port", str(port), "--config", str(_HERE / "llm_gateway.bench.yaml")]


class Options(argparse.Namespace):
    """Parsed command line."""

    compare: bool
    litellm: str | None
    seconds: float
    repeat: int
    warmup: float
    connections: list[int]
    memory_requests: int
    ttfb_requests: int
    out: Path
    server_cpu: str | None
    load_cpu: str | None
    only: set[str] | None
    before: Path | None

    def wants(self, system: str) -> bool:
        """Whether `--only` (when given) names this system."""
        return self.only is None or system in self.only


class _Run:
    """One benchmark run: owns the body files, logs and the report being filled."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.bodies = write_bodies(opts.out / "bodies")
        self.logs = opts.out / "logs"
        self.upstream_port = free_port()
        self.upstream_url = f"http://127.0.0.1:{self.upstream_port}"
        self.report = Report(meta=self._meta(), load=[], ttfb=[], memory=[])

    def _meta(self) -> dict[str, object]:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                                cwd=_ROOT, check=False).stdout.strip()
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.processor())
        return {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit or "unknown",
            "machine": f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}",
            "load_generator": f"{load_tool()} (closed loop, 1 thread), separate process",
            "layout": f"server under test on CPU {self.opts.server_cpu}; upstream + load generator on CPU "
                      f"{self.opts.load_cpu}",
            "per_point": f"{self.opts.repeat} runs of {self.opts.seconds:g} s, the median-RPS run reported "
                         "(errors of all runs added up)",
            "load_average_before": _loadavg(),
        }

    def _load_points(
        self, system: str, url: str, body: str, service: Service | None, *, header: str = ""
    ) -> LoadPoint | None:
        opts = self.opts
        if opts.warmup > 0:
            run_load(system, url, self.bodies[body], connections=16, seconds=opts.warmup, cpu=opts.load_cpu,
                     header=header)
        last = None
        for conns in opts.connections:
            runs = [self._one_point(system, url, body, service, conns, header) for _ in range(opts.repeat)]
            point = _median_run(runs)
            self.report.load.append(point)
            cpu = f"  cpu {point.cpu_us_per_request:.0f} us/req" if point.cpu_us_per_request else ""
            spread = f" ({point.rps_min:,.0f}-{point.rps_max:,.0f})" if len(runs) > 1 else ""
            _progress(f"{system:>13} c={conns:<3} {point.rps:>9,.0f} rps{spread}  p50 {point.p50_ms:.3f} ms  "
                      f"p99 {point.p99_ms:.3f} ms  errors {point.non_2xx + point.socket_errors}{cpu}")
            last = point
        return last

    def _one_point(
        self, system: str, url: str, body: str, service: Service | None, conns: int, header: str
    ) -> LoadPoint:
        cpu_before = service.cpu_seconds() if service is not None else 0.0
        point = run_load(system, url, self.bodies[body], connections=conns, seconds=self.opts.seconds,
                         cpu=self.opts.load_cpu, header=header)
        if service is not None:
            point.rss_mb = service.rss_mb()
            if point.requests:
                point.cpu_us_per_request = round((service.cpu_seconds() - cpu_before) * 1e6 / point.requests, 1)
        return point

    def _ttfb(self, system: str, url: str, body: str, *, header: str = "") -> None:
        point = run_ttfb(system, url, self.bodies[body], requests=self.opts.ttfb_requests, cpu=self.opts.load_cpu,
                         header=header)
        self.report.ttfb.append(point)
        _progress(f"{system:>13} TTFB p50 {point.ttfb_p50_ms:.3f} ms  p99 {point.ttfb_p99_ms:.3f} ms")

    def _memory(self, url: str, service: Service, rps_hint: float) -> None:
        """Drive `memory_requests` at 64 connections and read RSS at the half and at the end."""
        total = self.opts.memory_requests
        self.report.memory.append(MemoryPoint(requests=0, rss_mb=service.rss_mb()))
        done = 0
        for goal in (total // 2, total):
            while done < goal:
                seconds = max(1.0, (goal - done) / max(rps_hint, 1.0))
                point = run_load("memory", url, self.bodies["gateway"], connections=64, seconds=seconds,
                                 cpu=self.opts.load_cpu)
                done += point.requests
                rps_hint = point.rps or rps_hint
                if point.requests == 0:
                    raise RuntimeError("memory phase: the gateway answered no request")
            self.report.memory.append(MemoryPoint(requests=done, rss_mb=service.rss_mb()))
            _progress(f"{'memory':>13} {done:,} requests  RSS {service.rss_mb():.1f} MB")

    def _service(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Service:
        return Service(name, argv, log_path=self.logs / f"{name}.log", cpu=self.opts.server_cpu, env=env, cwd=cwd)

    def _gateway(self, mode: str) -> tuple[Service, str]:
        port = free_port()
        argv = gateway_argv(port)
        env = {"GENERATOR_MODE": mode, "OLLAMA_BASE_URL": self.upstream_url}
        return self._service(f"gateway-{mode}", argv, env), f"http://127.0.0.1:{port}"

    def execute(self) -> Report:
        opts = self.opts
        upstream = Service(
            "upstream",
            [sys.executable, "-m", "bench.perf.instant_upstream", "--port", str(self.upstream_port)],
            log_path=self.logs / "upstream.log",
            cpu=opts.load_cpu,
        )
        with running(upstream, f"{self.upstream_url}/api/version"):
            if opts.wants("direct"):
                self._load_points("direct", f"{self.upstream_url}/api/chat", "ollama", None)
                self._ttfb("direct", f"{self.upstream_url}/api/chat", "ollama-stream")
            if opts.before is not None and opts.wants("gateway-before"):
                self._before(opts.before)
            for mode in ("live", "mock"):
                if opts.wants(f"gateway-{mode}"):
                    self._gateway_run(mode)
            if opts.wants("baseline"):
                self._baseline()
            if opts.compare and opts.wants("litellm"):
                self._litellm()
        self.report.meta["load_average_after"] = _loadavg()
        fill_added_latency(self.report)
        fill_ratios(self.report)
        evaluate_targets(self.report)
        return self.report

    def _gateway_run(self, mode: str) -> None:
        service, base = self._gateway(mode)
        system = f"gateway-{mode}"
        with running(service, f"{base}/healthz"):
            last = self._load_points(system, base + GATEWAY_PATH, "gateway", service)
            self._ttfb(system, f"{base}{GATEWAY_PATH}/stream", "gateway")
            if mode == "live" and self.opts.memory_requests > 0:
                self._memory(base + GATEWAY_PATH, service, last.rps if last else 1000.0)

    def _before(self, tree: Path) -> None:
        """The gateway of another checkout (an earlier commit), live mode, same load: before and after in one run."""
        commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
        self.report.meta["before"] = f"gateway-before: commit {commit or '?'} ({tree})"
        port = free_port()
        env = {"GENERATOR_MODE": "live", "OLLAMA_BASE_URL": self.upstream_url, "PYTHONPATH": str(tree)}
        # `python -m` puts the working folder first on sys.path: the earlier checkout's, not this one's.
        service = self._service("gateway-before", gateway_argv(port, module=True), env, cwd=tree)
        base = f"http://127.0.0.1:{port}"
        with running(service, f"{base}/healthz"):
            self._load_points("gateway-before", base + GATEWAY_PATH, "gateway", service)

    def _baseline(self) -> None:
        port = free_port()
        baseline = self._service("baseline", [sys.executable, "-m", "bench.perf.baseline_passthrough", "--port",
                                              str(port), "--upstream", self.upstream_url])
        with running(baseline, f"http://127.0.0.1:{port}/"):
            self._load_points("baseline", f"http://127.0.0.1:{port}{GATEWAY_PATH}", "ollama", baseline)

    def _litellm(self) -> None:
        binary = self.opts.litellm or str(_ROOT / ".venv-litellm" / "bin" / "litellm")
        if not Path(binary).exists():
            raise SystemExit(f"LiteLLM not found at {binary}: run `make bench-compare`, which installs it")
        version = subprocess.run([str(Path(binary).parent / "python"), "-c",
                                  "import importlib.metadata as m; print(m.version('litellm'))"],
                                 capture_output=True, text=True, check=False).stdout.strip()
        self.report.meta["litellm"] = f"{version} (litellm[proxy] from PyPI, default settings, 1 worker)"
        port = free_port()
        # Recent LiteLLM refuses to start without a master key; a random one per run, sent as a bearer token.
        key = "sk-bench-" + secrets.token_hex(16)
        header = f"Authorization: Bearer {key}"
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "OLLAMA_BASE_URL": self.upstream_url,
               "LITELLM_MASTER_KEY": key}
        argv = [binary, "--config", str(_HERE / "litellm.bench.yaml"), "--host", "127.0.0.1", "--port", str(port)]
        service = self._service("litellm", argv, env)
        base = f"http://127.0.0.1:{port}"
        with running(service, f"{base}/health/liveliness", timeout=300):
            self._load_points("litellm", f"{base}/chat/completions", "openai", service, header=header)
            self._ttfb("litellm", f"{base}/chat/completions", "openai-stream", header=header)


def _median_run(runs: list[LoadPoint]) -> LoadPoint:
    """The run with the median RPS (its own latencies), with the RPS spread and every run's errors added up."""
    ordered = sorted(runs, key=lambda p: p.rps)
    point = ordered[len(ordered) // 2]
    point.repeats = len(runs)
    point.rps_min, point.rps_max = ordered[0].rps, ordered[-1].rps
    point.non_2xx = sum(p.non_2xx for p in runs)
    point.socket_errors = sum(p.socket_errors for p in runs)
    return point


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--compare", action="store_true", help="also run LiteLLM's proxy")
    parser.add_argument("--litellm", help="path of the `litellm` CLI (default .venv-litellm/bin/litellm)")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "5")))
    parser.add_argument("--repeat", type=int, default=3, help="runs per point; the median-RPS run is reported")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64])
    parser.add_argument("--memory-requests", type=int, default=100_000)
    parser.add_argument("--ttfb-requests", type=int, default=300)
    parser.add_argument("--out", type=Path, default=_ROOT / "bench-results")
    two_cores = (os.cpu_count() or 1) >= 2
    parser.add_argument("--server-cpu", default="0" if two_cores else None)
    parser.add_argument("--load-cpu", default="1" if two_cores else None)
    parser.add_argument("--only", type=lambda s: set(s.split(",")), default=None,
                        help="comma list of: direct, gateway-before, gateway-live, gateway-mock, baseline, litellm")
    parser.add_argument("--before", type=Path, default=None,
                        help="a checkout of an earlier commit (`git worktree add DIR COMMIT`): its gateway is "
                             "measured too, as `gateway-before`, live mode, load points only")
    return parser.parse_args(argv, namespace=Options())


def main(argv: list[str] | None = None) -> None:
    """Run, save `bench-results/<stamp>.{json,md}` and print the tables."""
    opts = _parse(argv)
    report = _Run(opts).execute()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-compare" if opts.compare else "")
    json_path, md_path = write_report(report, opts.out, stamp)
    print(render_markdown(report))
    print(f"saved {json_path.relative_to(_ROOT) if json_path.is_relative_to(_ROOT) else json_path} and {md_path.name}")


if __name__ == "__main__":
    main()
