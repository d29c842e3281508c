"""The layering the design promises, checked on the source: who may import whom, who may name a vendor,
and which one module opens outbound HTTP sessions."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("llm_gateway", "media_gateway", "orchestrator")
RUNTIME = ("shared_contracts", "service_common", *SERVICES)
# Provider vendors and upstream products: only their own modules (and service_common/providers/) name them.
VENDORS = re.compile(r"openai|anthropic|gemini|ollama|comfyui|dall[-·e]|nanobanana|claude|google", re.IGNORECASE)
# The one outbound-HTTP edge.
HTTP_EDGE = ROOT / "service_common" / "client.py"


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported(path: Path) -> set[str]:
    """Top-level packages `path` imports (absolute imports; relative ones stay inside the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service: str) -> None:
    others = set(SERVICES) - {service}
    offenders = {str(p.relative_to(ROOT)): sorted(_imported(p) & others) for p in _modules(service)}
    assert {p: o for p, o in offenders.items() if o} == {}


def test_shared_contracts_import_nothing_of_ours() -> None:
    ours = set(SERVICES) | {"service_common"}
    offenders = {str(p.relative_to(ROOT)): sorted(_imported(p) & ours) for p in _modules("shared_contracts")}
    assert {p: o for p, o in offenders.items() if o} == {}


def test_service_common_imports_no_service() -> None:
    offenders = {str(p.relative_to(ROOT)): sorted(_imported(p) & set(SERVICES)) for p in _modules("service_common")}
    assert {p: o for p, o in offenders.items() if o} == {}


def test_service_common_names_no_vendor_outside_its_providers_folder() -> None:
    providers = ROOT / "service_common" / "providers"
    offenders = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in _modules("service_common")
        if providers not in p.parents
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if VENDORS.search(line)
    ]
    assert offenders == []


def test_only_the_http_edge_opens_outbound_sessions() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for package in RUNTIME
        for p in _modules(package)
        if p != HTTP_EDGE and re.search(r"ClientSession\(|ws_connect\(|TCPConnector\(", p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
