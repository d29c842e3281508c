"""deploy/k8s: every manifest parses; files, names, ports, probes, resources and env vars line up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ._layout import DEPLOY, PLATFORM_ENV, REPO, SERVICES, env_vars_read, load_yaml_docs

K8S = DEPLOY / "k8s"
KUSTOMIZATION: dict[str, Any] = load_yaml_docs(K8S / "kustomization.yaml")[0]


def _resources() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in KUSTOMIZATION["resources"]:
        docs.extend(load_yaml_docs(K8S / name))
    return docs


RESOURCES = _resources()


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [r for r in RESOURCES if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def generated_configmaps() -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in KUSTOMIZATION["configMapGenerator"]}


def test_every_resource_file_exists_and_has_kind_and_name() -> None:
    for name in KUSTOMIZATION["resources"]:
        assert (K8S / name).is_file(), name
    for resource in RESOURCES:
        assert resource["apiVersion"] and resource["kind"] and resource["metadata"]["name"]


def test_configmaps_are_built_from_the_repository_configs() -> None:
    for service, (_, _, config_file, _) in SERVICES.items():
        entry = generated_configmaps()[f"{service}-config"]
        key, _, source = entry["files"][0].partition("=")
        assert key == config_file
        assert (K8S / source).resolve() == REPO / "config" / config_file
        assert (K8S / source).is_file(), f"{source} is missing"


def test_env_literals_are_read_by_something() -> None:
    known = env_vars_read() | PLATFORM_ENV
    for literal in generated_configmaps()["pdp-env"]["literals"]:
        name, _, value = literal.partition("=")
        assert name in known, f"pdp-env.{name}: nothing reads it"
        if name == "GENERATOR_MODE":
            assert value == "mock"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_deployment_probes_resources_ports_and_config_mount(service: str) -> None:
    _, port, config_file, config_env = SERVICES[service]
    deployment = find("Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["selector"]["matchLabels"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert container["args"] == ["--host", "0.0.0.0", "--port", str(port)]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    images = {entry["name"] for entry in KUSTOMIZATION["images"]}
    assert container["image"] in images
    env = {item["name"]: item["value"] for item in container.get("env", [])}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == env[config_env]]
    assert mount["mountPath"] == f"/app/config/{config_file}" and mount["subPath"] == config_file
    assert volumes[mount["name"]]["configMap"]["name"] in generated_configmaps()
    for source in container["envFrom"]:
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] in generated_configmaps()
    known = env_vars_read() | PLATFORM_ENV
    assert set(env) <= known, f"{service}: env {set(env) - known} is read by nothing"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_selects_the_deployment_on_its_port(service: str) -> None:
    _, port, _, _ = SERVICES[service]
    svc = find("Service", service)
    labels = find("Deployment", service)["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]


@pytest.mark.parametrize("service", ["llm-gateway", "media-gateway"])
def test_gateways_autoscale(service: str) -> None:
    hpa = find("HorizontalPodAutoscaler", service)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_media_store_is_shared_by_every_media_replica() -> None:
    claim = find("PersistentVolumeClaim", "media-store")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    pod = find("Deployment", "media-gateway")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == env["MEDIA_STORE_DIR"]]
    assert volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] == "media-store"


def test_manifests_name_no_missing_file() -> None:
    for path in Path(K8S).glob("*.yaml"):
        assert load_yaml_docs(path), f"{path.name} is empty"


def test_media_job_database_is_per_pod_and_off_the_shared_volume() -> None:
    pod = find("Deployment", "media-gateway")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    db_dir = env["MEDIA_JOBS_DB"].rsplit("/", 1)[0]
    assert not db_dir.startswith(env["MEDIA_STORE_DIR"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == db_dir]
    assert "emptyDir" in volumes[mount["name"]]
