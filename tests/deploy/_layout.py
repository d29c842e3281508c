"""What the deploy files are checked against: the repository's own configs, code and console scripts."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PACKAGES = ("service_common", "llm_gateway", "media_gateway", "orchestrator")

# service name -> (package, default port, config file, env var naming the config file)
SERVICES: dict[str, tuple[str, int, str, str]] = {
    "llm-gateway": ("llm_gateway", 8100, "llm_gateway.yaml", "LLM_GATEWAY_CONFIG"),
    "media-gateway": ("media_gateway", 8200, "media_gateway.yaml", "MEDIA_GATEWAY_CONFIG"),
    "orchestrator": ("orchestrator", 8300, "orchestrator.yaml", "ORCHESTRATOR_CONFIG"),
}

# Read by Python itself or by the image/compose plumbing, not by our code.
PLATFORM_ENV = frozenset(
    {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
)

_YAML_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")
_CODE_VAR = re.compile(
    r"""(?:environ|env)(?:\.get)?\s*[\[(]\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|config_env\s*=\s*["']([A-Z][A-Z0-9_]*)["']"""
    # Named constants such as MODE_ENV = "GENERATOR_MODE".
    r"""|^[A-Z_]*(?:ENV|_VAR)\s*(?::\s*\w+\s*)?=\s*["']([A-Z][A-Z0-9_]*)["']""",
    re.MULTILINE,
)


def load_yaml_docs(path: Path) -> list[Any]:
    """Every document of a YAML file, parsed safely."""
    return [doc for doc in YAML(typ="safe", pure=True).load_all(path.read_text(encoding="utf-8")) if doc is not None]


@cache
def env_vars_read() -> frozenset[str]:
    """Variables the configs expand (`${VAR}` in config/**/*.yaml) or the code reads from the environment."""
    found: set[str] = set()
    for path in (REPO / "config").rglob("*.yaml"):
        found.update(_YAML_VAR.findall(path.read_text(encoding="utf-8")))
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for match in _CODE_VAR.finditer(path.read_text(encoding="utf-8")):
                found.add(next(group for group in match.groups() if group))
    return frozenset(found)


@cache
def console_scripts() -> dict[str, str]:
    """`[project.scripts]` of pyproject.toml."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        scripts: dict[str, str] = tomllib.load(handle)["project"]["scripts"]
    return scripts


def default_port(package: str) -> int | None:
    """The `default_port=` the service's CLI passes to parse_serve_args, read from its source."""
    for path in (REPO / package).rglob("*.py"):
        match = re.search(r"(?:default_port|DEFAULT_PORT)\s*=\s*(\d+)", path.read_text(encoding="utf-8"))
        if match:
            return int(match.group(1))
    return None
