"""deploy/check.py: the repository's manifests and Dockerfiles pass, and broken ones fail clearly."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHECK = DEPLOY / "check.py"

pytest.importorskip("kubernetes_validate", reason="needs pip install 'tandem[deploy]'")


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_check", CHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_check"] = module
    spec.loader.exec_module(module)
    return module


def check_copy(copy: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Runs the checker in-process on a copy (faster than a subprocess per case)."""
    code = load_checker().main(["--k8s", str(copy / "k8s"), "--docker", str(copy / "docker")])
    return int(code), capsys.readouterr().err


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A private copy of deploy/ to break."""
    shutil.copytree(DEPLOY / "k8s", tmp_path / "k8s")
    shutil.copytree(DEPLOY / "docker", tmp_path / "docker")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer contains {old!r}: update this test"
    path.write_text(text.replace(old, new, 1))


def test_repository_deploy_files_pass() -> None:
    done = run_check()
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


BROKEN = [
    pytest.param(
        "k8s/core/gateway.yaml",
        "replicas: 5",
        "replicas: five",
        ["Deployment/gateway", "schema", "spec.replicas", "'five' is not of type 'integer'"],
        id="schema-type",
    ),
    pytest.param(
        "k8s/core/gateway.yaml",
        "  revisionHistoryLimit: 5",
        "  revisionHistoryLimits: 5",
        ["Deployment/gateway", "schema", "revisionHistoryLimits"],
        id="schema-unknown-field",
    ),
    pytest.param(
        "k8s/core/gateway.yaml",
        "  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: gateway",
        "  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: gateways",
        ["Service/gateway", "selector", "matches no pod template"],
        id="service-selector",
    ),
    pytest.param(
        "k8s/python/inference.yaml",
        "targetPort: grpc",
        "targetPort: grcp",
        ["Service/inference", "targetPort 'grcp' is not a container port"],
        id="service-target-port",
    ),
    pytest.param(
        "k8s/python/inference.yaml",
        "          readinessProbe:\n            grpc:\n              port: 50051",
        "          readinessProbe:\n            grpc:\n              port: 50052",
        ["Deployment/inference", "readinessProbe.grpc.port 50052 is not a declared container port"],
        id="probe-port",
    ),
    pytest.param(
        "k8s/python/consumer.yaml",
        "  namespace: tandem-python\n  labels:\n    app.kubernetes.io/name: report-consumer",
        "  namespace: tandem-pyhton\n  labels:\n    app.kubernetes.io/name: report-consumer",
        ["Deployment/report-consumer", "namespace 'tandem-pyhton' is not declared"],
        id="namespace",
    ),
    pytest.param(
        "k8s/core/gateway.yaml",
        'drop: ["ALL"]',
        'drop: ["NET_RAW"]',
        ["container gateway", 'capabilities.drop must include "ALL"'],
        id="capabilities",
    ),
    pytest.param(
        "k8s/python/redis.yaml",
        "image: redis:7.4.1-alpine",
        "image: redis:latest",
        ["container redis", "is not pinned"],
        id="image-latest",
    ),
    pytest.param(
        "k8s/overlays/gpu/inference-gpu.yaml",
        "name: inference\n  namespace",
        "name: inferense\n  namespace",
        ["Deployment/inferense", "patch matches no resource"],
        id="overlay-patch",
    ),
    pytest.param(
        "k8s/optional/servicemonitor.yaml",
        "- port: http",
        "- port: metrics",
        ["ServiceMonitor/gateway", "endpoint port 'metrics'"],
        id="servicemonitor-port",
    ),
    pytest.param(
        "k8s/optional/hpa-gateway.yaml",
        "    kind: Deployment\n    name: gateway",
        "    kind: Deployment\n    name: gatewy",
        ["HorizontalPodAutoscaler/gateway", "scaleTargetRef Deployment/gatewy names no workload"],
        id="hpa-target",
    ),
    pytest.param(
        "docker/python-service.Dockerfile",
        "USER 10001:10001",
        "USER root",
        ["python-service.Dockerfile", "final stage runs as root", "DL3002"],
        id="dockerfile-root",
    ),
    pytest.param(
        "docker/gateway.Dockerfile",
        "FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS runtime",
        "FROM python:latest AS runtime",
        ["gateway.Dockerfile", "base image 'python:latest' is not pinned", "DL3007"],
        id="dockerfile-latest",
    ),
    pytest.param(
        "docker/gateway.Dockerfile",
        "HEALTHCHECK --interval",
        "LABEL x=1\n# --interval",
        ["gateway.Dockerfile", "no HEALTHCHECK"],
        id="dockerfile-healthcheck",
    ),
]


@pytest.mark.parametrize(("path", "old", "new", "words"), BROKEN)
def test_broken_deploy_file_is_rejected(
    copy: Path, capsys: pytest.CaptureFixture[str], path: str, old: str, new: str, words: list[str]
) -> None:
    edit(copy / path, old, new)
    code, err = check_copy(copy, capsys)
    assert code == 1, err
    problem = [line for line in err.splitlines() if all(w in line for w in words[:2])]
    assert problem, f"no line with {words[:2]} in:\n{err}"
    for word in words[2:]:
        assert word in err, f"{word!r} not in:\n{err}"
    assert "problem(s)" in err


def test_stray_manifest_is_rejected(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(copy / "k8s/python/redis.yaml", copy / "k8s/python/redis-old.yaml")
    code, err = check_copy(copy, capsys)
    assert code == 1
    assert "redis-old.yaml: not used by any kustomization" in err


def test_duplicate_yaml_key_is_rejected(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(copy / "k8s/core/gateway.yaml", "  replicas: 5\n", "  replicas: 5\n  replicas: 1\n")
    code, err = check_copy(copy, capsys)
    assert code == 1
    assert "gateway.yaml: invalid YAML" in err
    assert "key 'replicas' appears twice" in err


def test_missing_manifest_directory_is_a_setup_error(tmp_path: Path) -> None:
    done = run_check("--k8s", str(tmp_path), "--docker", str(DEPLOY / "docker"))
    assert done.returncode == 2
    assert "no kustomization.yaml" in done.stderr


def test_gpu_overlay_adds_one_gpu_and_keeps_memory() -> None:
    checker = load_checker()
    report = checker.Report()
    objs = checker.render(DEPLOY / "k8s/overlays/gpu", report, set())
    assert report.problems == []
    (inference,) = [o for o in objs if (o.kind, o.name) == ("Deployment", "inference")]
    spec: dict[str, Any] = inference.doc["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["resources"]["limits"] == {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 1}
    assert container["resources"]["requests"]["memory"] == "4Gi"
    assert container["livenessProbe"]["grpc"] == {"port": 50051}
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_core_is_scaled_wider_than_python_services() -> None:
    checker = load_checker()
    objs = checker.render(DEPLOY / "k8s", checker.Report(), set())
    replicas = {o.name: o.doc["spec"]["replicas"] for o in objs if o.kind == "Deployment"}
    assert replicas["gateway"] == 5
    assert replicas["inference"] == 3
    assert {o.namespace for o in objs if o.name == "gateway"} == {"tandem-core"}
    assert {o.namespace for o in objs if o.name == "inference"} == {"tandem-python"}
