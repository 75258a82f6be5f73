"""The Kubernetes manifests (deploy/k8s): both overlays render with kubectl's Kustomize, every object is valid
for a current Kubernetes in strict mode (kubernetes-validate, offline), and every suite container has the
probes, limits, security context, config and key the deployment needs."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from common.services import SERVICES

REPO = Path(__file__).resolve().parent.parent
OVERLAYS = ("offline", "production")
VALIDATE_VERSIONS = ("1.32", kubernetes_validate.latest_version())
"""kubectl's own version here, and the newest the validator knows."""
PER_SERVICE_KINDS = ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler")
LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")
CONFIG_DIRS = {"suite-config": REPO / "configs", "suite-config-production": REPO / "configs" / "production"}
MEASURED_RSS_MIB = {"embedding": 810, "asr": 464, "llm": 890, "tts": 1027, "console": 88}
"""VmRSS of each offline service under load, measured here (docs/scale-out.md): requests must cover it."""

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (Debian's kubernetes-client) absent")


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    """The overlay's objects as ``kubectl kustomize`` renders them."""
    done = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "deploy" / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return tuple(item for item in yaml.safe_load_all(done.stdout) if item)


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    """The overlay's objects of ``kind`` by name."""
    return {item["metadata"]["name"]: item for item in render(overlay) if item["kind"] == kind}


def config_maps(overlay: str) -> dict[str, dict[str, Any]]:
    """Generated ConfigMaps by their name before Kustomize's hash suffix."""
    return {name.rsplit("-", 1)[0]: item for name, item in objects(overlay, "ConfigMap").items()}


def containers(overlay: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(deployment name, pod spec, container) of every container of every Deployment."""
    for name, deployment in objects(overlay, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"]:
            yield name, pod, container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def quantity(value: str | int) -> float:
    """A Kubernetes quantity in base units (bytes, cores)."""
    text = str(value)
    for suffix, factor in (("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("Ti", 2**40), ("m", 1e-3)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def service_config(overlay: str, name: str) -> dict[str, Any]:
    """The YAML config the service's pod mounts, parsed."""
    pod = objects(overlay, "Deployment")[name]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    by_generated_name = {item["metadata"]["name"]: item for item in objects(overlay, "ConfigMap").values()}
    return yaml.safe_load(by_generated_name[volume["configMap"]["name"]]["data"][f"{name}.yaml"])


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", VALIDATE_VERSIONS)
def test_every_object_is_valid_in_strict_mode(overlay: str, version: str) -> None:
    errors = []
    for item in render(overlay):
        where = f"{item['kind']}/{item['metadata']['name']}"
        try:
            kubernetes_validate.validate(item, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{where}: {exc.message}")
    assert not errors, "\n".join(errors)
    assert len(render(overlay)) >= 4 * len(SERVICES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_its_objects_and_labels(overlay: str) -> None:
    for kind in PER_SERVICE_KINDS:
        assert set(SERVICES) <= set(objects(overlay, kind)), kind
    for item in render(overlay):
        labels = item["metadata"].get("labels", {})
        assert all(labels.get(label) for label in LABELS), f"{item['kind']}/{item['metadata']['name']}: {labels}"
        assert labels["app.kubernetes.io/instance"] == f"suite-{overlay}"
    deployments = objects(overlay, "Deployment")
    for name, service in objects(overlay, "Service").items():
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items(), name
    for name, budget in objects(overlay, "PodDisruptionBudget").items():
        assert (
            budget["spec"]["selector"]["matchLabels"].items()
            <= deployments[name]["spec"]["template"]["metadata"]["labels"].items()
        )
    for name, scaler in objects(overlay, "HorizontalPodAutoscaler").items():
        assert scaler["spec"]["scaleTargetRef"]["name"] == name in deployments
        assert "replicas" not in deployments[name]["spec"], f"{name}: the autoscaler owns the replica count"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_probes_limits_and_a_locked_down_context(overlay: str) -> None:
    for name, pod, container in containers(overlay):
        where = f"{overlay}/{name}/{container['name']}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container.get(probe, {}).get("httpGet"), f"{where}: no {probe}"
        if name in SERVICES:
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            assert container["startupProbe"]["httpGet"]["path"] == "/readyz", where
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 60, f"{where}: startup window under 60 s"
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys(), where
        assert "memory" in resources["limits"], where
        assert quantity(resources["limits"]["memory"]) >= quantity(resources["requests"]["memory"]), where
        if name in MEASURED_RSS_MIB and overlay == "offline":
            assert quantity(resources["requests"]["memory"]) >= MEASURED_RSS_MIB[name] * 2**20, where
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["capabilities"]["drop"] == ["ALL"], where
        assert "readOnlyRootFilesystem" in context, where
        if name in SERVICES:
            assert context["readOnlyRootFilesystem"] is True, where
        seccomp = context.get("seccompProfile") or pod["securityContext"].get("seccompProfile")
        assert seccomp == {"type": "RuntimeDefault"}, where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod.get("automountServiceAccountToken") is False, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_maps_are_the_files_in_configs(overlay: str) -> None:
    maps = config_maps(overlay)
    assert "suite-config" in maps
    for generated, item in maps.items():
        directory = CONFIG_DIRS[generated]
        for key, text in item["data"].items():
            assert (directory / key).is_file(), f"{generated}: {key} is not a file in {directory}"
            assert text == (directory / key).read_text(encoding="utf-8"), f"{generated}: {key} differs"
    for name, _pod, container in containers(overlay):
        if name not in SERVICES:
            continue
        env = env_of(container)
        assert env[f"{name.upper()}_CONFIG"]["value"] == f"/etc/suite/{name}.yaml"
        assert service_config(overlay, name)  # the mounted ConfigMap has the file the variable names
        mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
        assert mounts["config"]["mountPath"] == "/etc/suite" and mounts["config"]["readOnly"] is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keys_come_from_secrets_and_pods_outlive_their_drain(overlay: str) -> None:
    for name, pod, container in containers(overlay):
        if name not in SERVICES:
            continue
        env = env_of(container)
        config = service_config(overlay, name)
        if name != "console":  # the page has no key; the browser sends the user's key to each service
            key = env[f"{name.upper()}__SERVER__API_KEY"]
            assert key["valueFrom"]["secretKeyRef"] == {"name": "suite-api-key", "key": "api-key"}, name
            assert "value" not in key
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        graceful = config["server"].get("graceful_timeout", 30)
        assert pod["terminationGracePeriodSeconds"] >= pre_stop + graceful + 10, f"{overlay}/{name}"
    assert not [item for item in render(overlay) if item["kind"] == "Secret"], (
        "no Secret is rendered: keys are created in the cluster, never kept in the repository"
    )


def test_production_reads_models_from_the_volume_and_the_llm_from_vllm() -> None:
    deployments = objects("production", "Deployment")
    claims = objects("production", "PersistentVolumeClaim")
    for name in ("asr", "embedding", "tts", "vllm"):
        pod = deployments[name]["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "models")
        assert volume["persistentVolumeClaim"]["claimName"] in claims
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "models")
        assert mount["mountPath"] == "/models" and mount["readOnly"] is True
    assert service_config("production", "asr")["backend"] == "sensevoice"
    assert service_config("production", "tts")["backend"] == "indextts"
    assert service_config("production", "embedding")["default_model"] == "Qwen3-Embedding-4B"
    assert service_config("production", "llm")["backend"] == "openai_upstream"
    llm_env = env_of(deployments["llm"]["spec"]["template"]["spec"]["containers"][0])
    vllm = objects("production", "Service")["vllm"]
    assert llm_env["LLM_UPSTREAM_URL"]["value"] == f"http://vllm:{vllm['spec']['ports'][0]['port']}/v1"
    vllm_container = deployments["vllm"]["spec"]["template"]["spec"]["containers"][0]
    assert vllm_container["resources"]["limits"]["nvidia.com/gpu"] >= 1
    assert service_config("offline", "asr")["backend"] == "whisper"  # the offline overlay keeps the CPU defaults


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_keeps_websockets_open_for_a_whole_live_session(overlay: str) -> None:
    ingresses = objects(overlay, "Ingress")

    def paths(item: dict[str, Any]) -> list[str]:
        return [path["path"] for rule in item["spec"]["rules"] for path in rule.get("http", {}).get("paths", [])]

    live = [item for item in ingresses.values() if "/asr/live" in paths(item)]
    assert len(live) == 1, "one Ingress routes /asr/live"
    annotations = live[0]["metadata"]["annotations"]
    session = service_config(overlay, "asr").get("live", {}).get("max_session_s", 3600)
    for name in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{name}"]) >= session, name
    backends = {
        path["backend"]["service"]["name"]
        for item in ingresses.values()
        for rule in item["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == set(SERVICES), "every service, and nothing else, is reachable through the Ingress"
