"""`<service> check-config PATH` on the shipped configs (CI runs them too) and on broken files."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from ._layout import REPO, SERVICES

# A broken file per service: (YAML text, problems that must be listed with their YAML path).
BROKEN = {
    "llm-gateway": (
        "mode: sometimes\ntimeouts: {mock: -1}\nllm_routing: {rules: [{role: brand, model: m}]}\n",
        ["mode: Invalid enum value 'sometimes'", "timeouts.mock: Expected `float` > 0.0",
         "llm_routing.rules[0].provider: missing required field"],
    ),
    "media-gateway": (
        "mode: sometimes\nstore: {dirr: /tmp}\n",
        ["mode: Invalid enum value 'sometimes'", "store.dirr: unknown field"],
    ),
    "orchestrator": (
        "llm_gateway: {base_url: 3}\nruns: {dirr: x}\n",
        ["llm_gateway.base_url: Expected `str`, got `int`", "runs.dirr: unknown field"],
    ),
}


def _run(service: str, path: Path) -> int:
    package = SERVICES[service][0]
    main = importlib.import_module(f"{package}.__main__").main
    try:
        code = main(["check-config", str(path)])
    except SystemExit as exc:
        code = exc.code
    assert isinstance(code, int)
    return code


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_shipped_config_is_ok(service: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = REPO / "config" / SERVICES[service][2]
    assert _run(service, path) == 0
    assert capsys.readouterr().out == f"{path}: ok\n"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_problem_is_printed_with_its_yaml_path(
    service: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, problems = BROKEN[service]
    path = tmp_path / SERVICES[service][2]
    path.write_text(text)
    assert _run(service, path) == 1
    lines = capsys.readouterr().out.splitlines()
    for problem in problems:
        assert f"{path}: {problem}" in lines
    assert lines[-1] == f"{path}: {len(lines) - 1} problem(s)"
