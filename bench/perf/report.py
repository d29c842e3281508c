"""The benchmark report: one Struct, written as JSON and as Markdown tables, with targets and ratios."""

from __future__ import annotations

from pathlib import Path

import msgspec

from bench.perf.load import LoadPoint, TtfbPoint

__all__ = ["MemoryPoint", "Report", "Target", "evaluate_targets", "render_markdown", "write_report"]

# RSS may wobble by allocator noise; more than this between 50k and 100k requests counts as growth.
RSS_GROWTH_TOLERANCE_MB = 2.0


class MemoryPoint(msgspec.Struct, kw_only=True):
    """Gateway RSS after a number of requests in the memory phase (c=64, live mode)."""

    requests: int
    rss_mb: float


class Target(msgspec.Struct, kw_only=True):
    """One issue target against what this run measured."""

    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run


class Report(msgspec.Struct, kw_only=True):
    """Everything one `make bench` / `make bench-compare` run measured."""

    meta: dict[str, object]
    load: list[LoadPoint]
    ttfb: list[TtfbPoint]
    memory: list[MemoryPoint]
    targets: list[Target] = []
    ratios: list[dict[str, object]] = []


def _point(report: Report, system: str, connections: int) -> LoadPoint | None:
    for point in report.load:
        if point.system == system and point.connections == connections:
            return point
    return None


def fill_added_latency(report: Report) -> None:
    """Added p50/p99 of every system over `direct` at the same concurrency."""
    for point in report.load:
        direct = _point(report, "direct", point.connections)
        if point.system != "direct" and direct is not None:
            point.added_p50_ms = round(point.p50_ms - direct.p50_ms, 3)
            point.added_p99_ms = round(point.p99_ms - direct.p99_ms, 3)


def fill_ratios(report: Report, ours: str = "gateway-live") -> None:
    """Per concurrency: ours/baseline and ours/litellm, for RPS and for added p50 (and ours/before, before/baseline)."""
    for conns in sorted({p.connections for p in report.load}):
        mine = _point(report, ours, conns)
        if mine is None:
            continue
        row: dict[str, object] = {"connections": conns}
        for other in ("baseline", "litellm"):
            theirs = _point(report, other, conns)
            if theirs is None:
                continue
            row[f"rps_ours_over_{other}"] = round(mine.rps / theirs.rps, 2) if theirs.rps else None
            if mine.added_p50_ms is not None and theirs.added_p50_ms:
                row[f"added_p50_ours_over_{other}"] = round(mine.added_p50_ms / theirs.added_p50_ms, 3)
        # With `--before`: the earlier commit's gateway against the same baseline, and ours against it.
        before, baseline = _point(report, "gateway-before", conns), _point(report, "baseline", conns)
        if before is not None and before.rps:
            row["rps_ours_over_before"] = round(mine.rps / before.rps, 2)
            if baseline is not None and baseline.rps:
                row["rps_before_over_baseline"] = round(before.rps / baseline.rps, 2)
        if len(row) > 1:
            report.ratios.append(row)


def evaluate_targets(report: Report, ours: str = "gateway-live") -> None:
    """The issue's targets; reported, never asserted."""
    at64, at1 = _point(report, ours, 64), _point(report, ours, 1)
    base64, lite64, lite1 = _point(report, "baseline", 64), _point(report, "litellm", 64), _point(report, "litellm", 1)
    targets = report.targets
    if at64 is not None:
        targets.append(Target(name="RPS at 64 connections", goal=">= 2,400", measured=f"{at64.rps:,.0f}",
                              met=at64.rps >= 2400))
        if base64 is not None and base64.rps:
            share = at64.rps / base64.rps
            targets.append(Target(name="share of bare pass-through RPS at 64", goal=">= 70%",
                                  measured=f"{share:.0%} ({at64.rps:,.0f} / {base64.rps:,.0f})", met=share >= 0.7))
    if at1 is not None and at1.added_p50_ms is not None and at1.added_p99_ms is not None:
        targets.append(Target(name="added p50 at 1 connection", goal="<= 0.6 ms",
                              measured=f"{at1.added_p50_ms:.3f} ms", met=at1.added_p50_ms <= 0.6))
        targets.append(Target(name="added p99 at 1 connection", goal="<= 2 ms",
                              measured=f"{at1.added_p99_ms:.3f} ms", met=at1.added_p99_ms <= 2.0))
    if at64 is not None and lite64 is not None and lite64.rps:
        times = at64.rps / lite64.rps
        targets.append(Target(name="RPS vs LiteLLM at 64", goal=">= 20x", measured=f"{times:.1f}x", met=times >= 20))
    if at1 is not None and lite1 is not None and at1.added_p50_ms is not None and lite1.added_p50_ms is not None:
        ok = at1.added_p50_ms * 20 <= lite1.added_p50_ms
        targets.append(Target(name="added p50 vs LiteLLM at 1", goal="<= 1/20 of LiteLLM's",
                              measured=f"{at1.added_p50_ms:.3f} ms vs {lite1.added_p50_ms:.3f} ms", met=ok))
    elif lite64 is None:
        targets.append(Target(name="vs LiteLLM (RPS, added p50)", goal=">= 20x, <= 1/20",
                              measured="run `make bench-compare`", met=None))
    if len(report.memory) >= 3:
        mid, end = report.memory[-2], report.memory[-1]
        growth = end.rss_mb - mid.rss_mb
        targets.append(Target(name=f"RSS after {end.requests:,} requests", goal="<= 100 MB",
                              measured=f"{end.rss_mb:.1f} MB", met=end.rss_mb <= 100))
        targets.append(Target(name=f"RSS growth {mid.requests:,} -> {end.requests:,}",
                              goal=f"none (<= {RSS_GROWTH_TOLERANCE_MB:.0f} MB noise)",
                              measured=f"{growth:+.1f} MB", met=growth <= RSS_GROWTH_TOLERANCE_MB))
    targets.append(Target(name="mock-mode P0 flow wall time", goal="<= 1 s",
                          measured="not measured here (make e2e)", met=None))


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _range(point: LoadPoint) -> str:
    if point.rps_min is None or point.rps_max is None or point.repeats < 2:
        return ""
    return f"{point.rps_min:,.0f}–{point.rps_max:,.0f}"


def render_markdown(report: Report) -> str:
    """Tables for the terminal and the README."""
    lines = ["# LLM Gateway benchmark", ""]
    meta = report.meta
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    lines += ["", "## Load (non-streaming, closed loop)", "",
              ("| system | conns | RPS | RPS range | p50 ms | p90 ms | p99 ms | added p50 | added p99 | non-2xx "
               "| socket err | RSS MB | CPU µs/req |"),
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in report.load:
        lines.append(
            f"| {p.system} | {p.connections} | {p.rps:,.0f} | {_range(p)} | {_fmt(p.p50_ms, 3)} | "
            f"{_fmt(p.p90_ms, 3)} | "
            f"{_fmt(p.p99_ms, 3)} | {_fmt(p.added_p50_ms, 3)} | {_fmt(p.added_p99_ms, 3)} | {p.non_2xx} | "
            f"{p.socket_errors} | {_fmt(p.rss_mb, 1)} | {_fmt(p.cpu_us_per_request, 0)} |"
        )
    if report.ttfb:
        lines += [
            "",
            "## Streaming: time to first byte (sequential, one connection)",
            "",
            "| system | requests | errors | TTFB p50 ms | TTFB p90 ms | TTFB p99 ms | total p50 ms | total p99 ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in report.ttfb:
            lines.append(
                f"| {s.system} | {s.requests} | {s.errors} | {s.ttfb_p50_ms:.3f} | {s.ttfb_p90_ms:.3f} | "
                f"{s.ttfb_p99_ms:.3f} | {s.total_p50_ms:.3f} | {s.total_p99_ms:.3f} |"
            )
    if report.memory:
        lines += ["", "## Memory (gateway, live mode, 64 connections)", "", "| requests | RSS MB |", "|---:|---:|"]
        lines += [f"| {m.requests:,} | {m.rss_mb:.1f} |" for m in report.memory]
    if report.ratios:
        lines += ["", "## Ratios (ours = gateway-live)", "", "| conns | metric | value |", "|---:|---|---:|"]
        for row in report.ratios:
            conns = row["connections"]
            lines += [f"| {conns} | {key} | {value} |" for key, value in row.items() if key != "connections"]
    lines += ["", "## Targets", "", "| target | goal | measured | met |", "|---|---|---|---|"]
    for t in report.targets:
        verdict = "n/a" if t.met is None else ("yes" if t.met else "**no**")
        lines.append(f"| {t.name} | {t.goal} | {t.measured} | {verdict} |")
    return "\n".join(lines) + "\n"


def write_report(report: Report, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """`<stem>.json` and `<stem>.md` in `out_dir`, plus `latest.*` copies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = msgspec.json.format(msgspec.json.encode(report), indent=2)
    markdown = render_markdown(report)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    for path, content in ((json_path, data), (md_path, markdown.encode())):
        path.write_bytes(content)
        (out_dir / f"latest{path.suffix}").write_bytes(content)
    return json_path, md_path
