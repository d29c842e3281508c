"""deploy/compose.yaml: parses, builds real Dockerfile targets, and wires ports, env vars and volumes that exist."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ._layout import DEPLOY, PLATFORM_ENV, REPO, SERVICES, env_vars_read, load_yaml_docs
from .test_dockerfile import STAGES

COMPOSE: dict[str, Any] = load_yaml_docs(DEPLOY / "compose.yaml")[0]
SERVICE_DEFS: dict[str, Any] = COMPOSE["services"]

# Compose's own interpolation variables (image naming, the ComfyUI image choice); never read by our code.
COMPOSE_ONLY_VARS = frozenset({"IMAGE_PREFIX", "IMAGE_TAG", "COMFYUI_IMAGE"})
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolated(value: str) -> str:
    """`value` as compose would see it with no variables set: `${X:-default}` becomes `default`."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", value)


SCALE = {"postgres", "minio", "bucket", "ollama-1", "ollama-2", "comfyui-1", "comfyui-2",
         *(f"{name}-scaled" for name in SERVICES)}
# Compose's own variables of the scale profile's engines (passwords of the local PostgreSQL and MinIO).
COMPOSE_ONLY_VARS = COMPOSE_ONLY_VARS | {"PDP_DB_PASSWORD"}


def test_services_and_the_live_profile() -> None:
    assert set(SERVICE_DEFS) == {*SERVICES, "ollama", "comfyui", *SCALE}
    for name in SERVICES:
        assert "profiles" not in SERVICE_DEFS[name], f"{name} must start without a profile"
    for name in ("ollama", "comfyui"):
        assert SERVICE_DEFS[name]["profiles"] == ["live"]
    assert SERVICE_DEFS["ollama"]["image"].startswith("ollama/ollama")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_build_uses_a_real_target_and_context(service: str) -> None:
    build = SERVICE_DEFS[service]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == REPO
    assert (context / build["dockerfile"]).is_file()
    assert build["target"] == service and service in STAGES


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_published_port_is_the_service_default(service: str) -> None:
    _, port, _, _ = SERVICES[service]
    assert SERVICE_DEFS[service]["ports"] == [f"{port}:{port}"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_mock_by_default_and_config_file_exists(service: str) -> None:
    _, _, config_file, config_env = SERVICES[service]
    env = SERVICE_DEFS[service]["environment"]
    assert interpolated(env["GENERATOR_MODE"]) == "mock"
    assert env[config_env] == f"/app/config/{config_file}"
    assert (REPO / "config" / config_file).is_file(), f"config/{config_file} is missing"


def test_every_env_var_is_one_the_code_or_configs_read() -> None:
    known = env_vars_read() | PLATFORM_ENV
    # Our images only: PostgreSQL's and MinIO's images read their own variables.
    ours = {name: service for name, service in SERVICE_DEFS.items() if "build" in service}
    assert set(ours) == {*SERVICES, *(f"{name}-scaled" for name in SERVICES)}
    for name, service in ours.items():
        for var in service.get("environment", {}):
            assert var in known, f"services.{name}.environment.{var}: nothing reads it"
        for value in service.get("environment", {}).values():
            for used in _INTERPOLATION.findall(str(value)):
                assert used[0] in known | COMPOSE_ONLY_VARS, f"services.{name}: ${{{used[0]}}} is unknown"


def test_gateways_reach_the_live_profile_and_each_other_by_service_name() -> None:
    llm_env = SERVICE_DEFS["llm-gateway"]["environment"]
    media_env = SERVICE_DEFS["media-gateway"]["environment"]
    orch_env = SERVICE_DEFS["orchestrator"]["environment"]
    assert interpolated(llm_env["OLLAMA_BASE_URL"]) == "http://ollama:11434"
    assert interpolated(media_env["COMFYUI_BASE_URL"]) == "http://comfyui:8188"
    assert SERVICE_DEFS["ollama"]["ports"] == ["11434:11434"]
    assert SERVICE_DEFS["comfyui"]["ports"] == ["8188:8188"]
    assert orch_env["LLM_GATEWAY_URL"] == "http://llm-gateway:8100"
    assert orch_env["MEDIA_GATEWAY_URL"] == "http://media-gateway:8200"
    assert set(SERVICE_DEFS["orchestrator"]["depends_on"]) == {"llm-gateway", "media-gateway"}


def test_media_store_is_a_named_volume_at_the_store_dir() -> None:
    media = SERVICE_DEFS["media-gateway"]
    store_dir = media["environment"]["MEDIA_STORE_DIR"]
    assert f"media-store:{store_dir}" in media["volumes"]
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICE_DEFS.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source in declared, f"services.{name}.volumes: {source} is not declared"


def test_the_scale_profile_runs_every_service_twice_on_shared_engines_selected_by_url() -> None:
    for name in SCALE:
        assert SERVICE_DEFS[name]["profiles"] == ["scale"], name
    for name in SERVICES:
        scaled = SERVICE_DEFS[f"{name}-scaled"]
        assert scaled["deploy"]["replicas"] == 2 and scaled["build"]["target"] == name
        port = SERVICES[name][1]
        (published,) = scaled["ports"]
        assert published.endswith(f":{port}") and "-" in published.split(":")[0]  # a host port per replica
    llm = SERVICE_DEFS["llm-gateway-scaled"]["environment"]
    media = SERVICE_DEFS["media-gateway-scaled"]["environment"]
    orch = SERVICE_DEFS["orchestrator-scaled"]["environment"]
    assert llm["OLLAMA_BASE_URL"] == "http://ollama-1:11434,http://ollama-2:11434"
    assert media["COMFYUI_BASE_URL"] == "http://comfyui-1:8188,http://comfyui-2:8188"
    for env, key in ((media, "MEDIA_JOBS_URL"), (orch, "ORCHESTRATOR_RUNS_URL")):
        assert interpolated(env[key]).startswith("postgresql://pdp:") and env[key].endswith("@postgres:5432/pdp")
    assert media["MEDIA_STORE_URL"].startswith("s3://pdp-media/") and orch["ORCHESTRATOR_IMAGES_URL"].startswith("s3://")
    for env in (media, orch):
        assert interpolated(env["AWS_ENDPOINT_URL"]) == "http://minio:9000" and "AWS_SECRET_ACCESS_KEY" in env
    assert orch["LLM_GATEWAY_URL"] == "http://llm-gateway-scaled:8100"
    assert orch["MEDIA_GATEWAY_URL"] == "http://media-gateway-scaled:8200"
    # The bucket exists before a replica writes to it; the database answers before one migrates it.
    for name in ("media-gateway-scaled", "orchestrator-scaled"):
        needs = SERVICE_DEFS[name]["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy"
        assert needs["bucket"]["condition"] == "service_completed_successfully"
