"""The orchestrator's API keys, OpenAPI document, CORS stance and key hygiene."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from starlette.routing import Route

from orchestrator.app import create_app
from orchestrator.config import OrchestratorConfig, load_orchestrator_config
from orchestrator.tools.processes import REPO_ROOT, free_port
from tests.orchestrator.answers import PRODUCT
from tests.orchestrator.inprocess import serve_app

RUNS = "/api/v1/flows/p0-product-detail/runs"
KEY = "orchestrator-key-90ab-do-not-log"


def _config(tmp_path: Path, **env: str) -> OrchestratorConfig:
    closed = f"http://127.0.0.1:{free_port()}"
    environ = {"LLM_GATEWAY_URL": closed, "MEDIA_GATEWAY_URL": closed, "ORCHESTRATOR_RUNS_DIR": str(tmp_path), **env}
    return load_orchestrator_config(REPO_ROOT / "config" / "orchestrator.yaml", environ)


async def _call(method: str, url: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as resp:
        raw = await resp.read()
        is_json = resp.content_type == "application/json" and raw
        return resp.status, msgspec.json.decode(raw) if is_json else raw, dict(resp.headers)


async def test_api_keys_guard_runs_but_not_health_or_the_document(tmp_path: Path) -> None:
    async with serve_app(create_app(_config(tmp_path, ORCHESTRATOR_API_KEYS=KEY))) as url:
        status, payload, headers = await _call("POST", url + RUNS, json={"product": PRODUCT})
        assert status == 401 and payload["error"]["code"] == "unauthorized"
        assert headers["WWW-Authenticate"].startswith("Bearer")
        status, _, _ = await _call("GET", url + "/api/v1/runs", headers={"authorization": "Bearer wrong"})
        assert status == 401
        status, doc, _ = await _call("POST", url + RUNS, json={"product": PRODUCT},
                                     headers={"authorization": f"Bearer {KEY}"})
        # Authorised; its gateways are down on purpose, so the run fails at its first step.
        assert status == 200 and doc["status"] == "failed" and doc["error"]["code"] == "provider_unavailable"
        for path in ("/healthz", "/openapi.json", "/metrics"):
            status, _, _ = await _call("GET", url + path)
            assert status == 200, path
        status, document, _ = await _call("GET", url + "/openapi.json")
        assert document["paths"][RUNS]["post"]["security"] == [{"bearer": []}]


async def test_openapi_describes_every_route_and_schema(tmp_path: Path) -> None:
    app = create_app(_config(tmp_path))
    async with serve_app(app) as url:
        status, doc, _ = await _call("GET", url + "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    served = {(m.lower(), r.path) for r in app.routes if isinstance(r, Route) for m in (r.methods or ()) if m != "HEAD"}
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented
    assert {"RunRequest", "RunDocument", "RunList", "ErrorEnvelope"} <= set(doc["components"]["schemas"])
    run = doc["paths"][RUNS]["post"]
    assert set(run["responses"]) >= {"200", "202", "400", "413", "504"}
    assert any(p["name"] == "X-Request-Timeout" for p in run["parameters"])
    listing = doc["paths"]["/api/v1/runs"]["get"]
    assert any(p["name"] == "limit" and p["in"] == "query" for p in listing["parameters"])


async def test_cors_is_off_by_default(tmp_path: Path) -> None:
    async with serve_app(create_app(_config(tmp_path))) as url:
        origin = {"origin": "https://evil.example", "access-control-request-method": "POST"}
        status, _, preflight = await _call("OPTIONS", url + RUNS, headers=origin)
        assert status == 405
        status, _, reply = await _call("GET", url + "/api/v1/runs", headers={"origin": "https://evil.example"})
        assert status == 200
        for headers in (preflight, reply):
            assert not any(name.lower().startswith("access-control-") for name in headers)


def test_gateway_keys_come_from_the_environment_and_never_show_in_repr(tmp_path: Path) -> None:
    config = _config(tmp_path, LLM_GATEWAY_API_KEY=KEY)
    assert config.llm_gateway.api_key == KEY
    assert config.media_gateway.api_key in ("", None)
    assert KEY not in repr(config) and KEY not in repr(config.llm_gateway)
