"""The Postman collection: valid v2.1 structure, one expectation per request, every endpoint covered."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from starlette.routing import Route

from ._layout import REPO
from .postman import SCHEMA_V21, PostmanRequest, extract, load_collection, requests_of, used_variables, variables_of

COLLECTION = load_collection()
REQUESTS = list(requests_of(COLLECTION))

BASES = {"LLM Gateway": "llm_base", "Media Gateway": "media_base", "Orchestrator": "orch_base"}

# (base variable, method, path template): the public surface of the three services.
ENDPOINTS = {
    ("llm_base", "GET", "/healthz"),
    ("llm_base", "GET", "/readyz"),
    ("llm_base", "GET", "/api/v1/llm/routes"),
    ("llm_base", "POST", "/api/v1/llm/generate"),
    ("llm_base", "POST", "/api/v1/llm/generate/stream"),
    ("media_base", "GET", "/healthz"),
    ("media_base", "GET", "/readyz"),
    ("media_base", "GET", "/api/v1/media/workflows"),
    ("media_base", "POST", "/api/v1/media/image/generate"),
    ("media_base", "GET", "/api/v1/media/jobs/{id}"),
    ("media_base", "DELETE", "/api/v1/media/jobs/{id}"),
    ("media_base", "GET", "/api/v1/media/jobs/{id}/events"),
    ("media_base", "GET", "/api/v1/media/images/{id}"),
    ("orch_base", "GET", "/healthz"),
    ("orch_base", "GET", "/readyz"),
    ("orch_base", "POST", "/api/v1/flows/p0-product-detail/runs"),
    ("orch_base", "GET", "/api/v1/runs/{id}"),
    ("orch_base", "GET", "/api/v1/runs"),
    ("orch_base", "GET", "/api/v1/runs/{id}/events"),
    ("orch_base", "GET", "/runs/{id}"),
    ("orch_base", "GET", "/runs/{id}/images/{id}"),
    ("orch_base", "GET", "/runs/{id}/export"),
    ("orch_base", "GET", "/"),
    ("orch_base", "GET", "/compare"),
}

_ID_SEGMENT = re.compile(r"/(?:\{\{\w+\}\}|no-such-[\w-]+)(?=/|$)")


def template_of(request: PostmanRequest) -> tuple[str, str, str]:
    """The endpoint a request hits: ids and `{{vars}}` in the path become `{id}`."""
    return request.base_variable, request.method, _ID_SEGMENT.sub("/{id}", request.path)


def test_collection_is_v21() -> None:
    info = COLLECTION["info"]
    assert info["schema"] == SCHEMA_V21
    assert info["name"] and re.fullmatch(r"[0-9a-f-]{36}", info["_postman_id"])
    for folder in COLLECTION["item"]:
        assert folder["name"] in BASES and isinstance(folder["item"], list) and folder["item"]
        for item in folder["item"]:
            request = item["request"]
            assert request["method"] in {"GET", "POST", "PUT", "PATCH", "DELETE"}
            url = request["url"]
            assert url["raw"] == url["host"][0] + "/" + "/".join(url["path"])
            for event in item["event"]:
                assert event["listen"] in {"test", "prerequest"}
                assert event["script"]["type"] == "text/javascript"
                assert all(isinstance(line, str) for line in event["script"]["exec"])


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: f"{r.folder}/{r.name}")
def test_each_request_targets_its_folder_service(request_: PostmanRequest) -> None:
    assert request_.base_variable == BASES[request_.folder]
    assert request_.path.startswith("/")


@pytest.mark.parametrize("request_", [r for r in REQUESTS if r.body is not None], ids=lambda r: r.name)
def test_bodies_are_json_except_the_deliberately_broken_one(request_: PostmanRequest) -> None:
    assert request_.body is not None
    assert ("Content-Type", "application/json") in request_.headers
    try:
        json.loads(request_.body)
    except json.JSONDecodeError:
        assert request_.expected_status == 400 and "not JSON" in request_.name


def test_every_endpoint_is_covered() -> None:
    covered = {template_of(r) for r in REQUESTS}
    assert ENDPOINTS <= covered, f"not covered: {sorted(ENDPOINTS - covered)}"


def _app_endpoints(tmp_path: Path) -> set[tuple[str, str, str]]:
    """(base variable, method, path template) of every route the three apps really serve."""
    from llm_gateway.app import create_app as llm_app
    from llm_gateway.config import load_gateway_config
    from media_gateway.app import create_app as media_app
    from media_gateway.config import load_media_config
    from orchestrator.app import create_app as orchestrator_app
    from orchestrator.config import load_orchestrator_config

    env = {"MEDIA_STORE_DIR": str(tmp_path / "media"), "ORCHESTRATOR_RUNS_DIR": str(tmp_path / "runs")}
    apps = {
        "llm_base": llm_app(load_gateway_config(REPO / "config" / "llm_gateway.yaml", environ=env)),
        "media_base": media_app(load_media_config(REPO / "config" / "media_gateway.yaml", env)),
        "orch_base": orchestrator_app(load_orchestrator_config(REPO / "config" / "orchestrator.yaml", env)),
    }
    found = set()
    for base, app in apps.items():
        for route in app.routes:
            assert isinstance(route, Route), f"{base}: {route!r} is not a plain Route; extend this test"
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((base, method, re.sub(r"\{\w+(?::\w+)?\}", "{id}", route.path)))
    return found


def test_every_route_the_apps_serve_is_covered(tmp_path: Path) -> None:
    covered = {template_of(r) for r in REQUESTS}
    served = _app_endpoints(tmp_path)
    assert served <= covered, f"routes without a Postman request: {sorted(served - covered)}"
    assert covered <= served, f"Postman requests for routes nobody serves: {sorted(covered - served)}"


def test_every_used_variable_is_declared_and_set_before_use() -> None:
    declared = variables_of(COLLECTION)
    assert used_variables(COLLECTION) <= set(declared)
    captured: set[str] = set()
    for request in REQUESTS:
        text = request.url + (request.body or "") + "".join(v for _, v in request.headers)
        for name in re.findall(r"\{\{(\w+)\}\}", text):
            assert declared[name] or name in captured, f"{request.name}: {{{{{name}}}}} used before it is captured"
        captured.update(name for name, _ in request.captures)


def test_happy_and_error_paths_are_both_present() -> None:
    for folder in BASES:
        statuses = {r.expected_status for r in REQUESTS if r.folder == folder}
        assert 200 in statuses and any(s >= 400 for s in statuses), folder


def test_capture_paths_evaluate() -> None:
    assert extract({"images": [{"id": "abc"}]}, ".images[0].id") == "abc"
    assert extract({"run_id": "r1"}, ".run_id") == "r1"
