"""deploy/k8s: every manifest parses; files, names, ports, probes, resources and env vars line up."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from ._layout import DEPLOY, PLATFORM_ENV, REPO, SERVICES, env_vars_read, load_yaml_docs

K8S = DEPLOY / "k8s"
MAKEFILE_K8S_CONFIG = (REPO / "Makefile").read_text("utf-8").partition("\nk8s-config:")[2].partition("\n\n")[0]
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


def test_configmaps_are_built_from_copies_of_the_repository_configs_inside_the_folder() -> None:
    # `make k8s-config` copies config/*.yaml to deploy/k8s/config/: no file outside the kustomization root.
    for service, (_, _, config_file, _) in SERVICES.items():
        entry = generated_configmaps()[f"{service}-config"]
        key, _, source = entry["files"][0].partition("=")
        assert key == config_file and source == f"config/{config_file}"
        assert (K8S / source).resolve().parent == K8S / "config"
        assert f"config/{config_file}" in MAKEFILE_K8S_CONFIG


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
    env = {item["name"]: item.get("value") for item in container.get("env", [])}
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


def test_manifests_name_no_missing_file() -> None:
    for path in Path(K8S).glob("*.yaml"):
        assert load_yaml_docs(path), f"{path.name} is empty"


def _env(service: str) -> dict[str, Any]:
    (container,) = find("Deployment", service)["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item for item in container.get("env", [])}


@pytest.mark.parametrize(("service", "variable"), [("media-gateway", "MEDIA_JOBS_URL"),
                                                    ("orchestrator", "ORCHESTRATOR_RUNS_URL")])
def test_stateful_services_run_replicas_on_the_database_from_a_secret(service: str, variable: str) -> None:
    deployment = find("Deployment", service)
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert _env(service)[variable]["valueFrom"] == {"secretKeyRef": {"name": "pdp-database", "key": "url"}}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"secretRef": {"name": "pdp-object-store"}} in container["envFrom"]
    pod = deployment["spec"]["template"]["spec"]
    assert not any("persistentVolumeClaim" in volume for volume in pod["volumes"])
    assert not [r for r in RESOURCES if r["kind"] == "PersistentVolumeClaim"]


def test_no_service_pins_clients_to_a_replica() -> None:
    for resource in RESOURCES:
        if resource["kind"] == "Service":
            assert "sessionAffinity" not in resource["spec"], resource["metadata"]["name"]


def test_image_urls_point_at_the_ingress_host_that_routes_them_to_the_media_gateway() -> None:
    literals = dict(item.partition("=")[::2] for item in generated_configmaps()["pdp-env"]["literals"])
    public = literals["MEDIA_PUBLIC_BASE_URL"]
    ingress = find("Ingress", "pdp")
    (rule,) = ingress["spec"]["rules"]
    assert public == f"https://{rule['host']}" and rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    images = [p for p in rule["http"]["paths"] if "/api/v1/media/images/".startswith(p["path"])]
    assert images[0]["backend"]["service"]["name"] == "media-gateway"
    assert literals["MEDIA_STORE_URL"].startswith("s3://") and literals["ORCHESTRATOR_IMAGES_URL"].startswith("s3://")


def test_kubectl_kustomize_renders_without_the_load_restrictor(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    folder = tmp_path / "k8s"
    shutil.copytree(K8S, folder, ignore=shutil.ignore_patterns("config"))
    # What `make k8s-config` does.
    (folder / "config").mkdir()
    for _, _, config_file, _ in SERVICES.values():
        shutil.copy(REPO / "config" / config_file, folder / "config" / config_file)
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    kinds = [doc["kind"] for doc in YAML(typ="safe", pure=True).load_all(done.stdout) if doc]
    assert kinds.count("Deployment") == 3 and "Ingress" in kinds and kinds.count("ConfigMap") == 4
    assert "sessionAffinity" not in done.stdout and "../../config" not in done.stdout
