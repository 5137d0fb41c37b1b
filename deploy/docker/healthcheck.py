"""Container HEALTHCHECK for tandem images; exit 0 when healthy, 1 otherwise.

``TANDEM_HEALTHCHECK`` selects the probe: ``http:PORT/PATH`` (the gateway), ``grpc:PORT`` (the
grpc.health.v1 service of ``python -m tandem serve``) or ``none`` (the report consumer, which has
no port). Kubernetes ignores HEALTHCHECK and uses the probes in deploy/k8s instead.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def check(spec: str) -> bool:
    """Runs the probe ``spec`` against 127.0.0.1 and returns whether it passed."""
    kind, _, rest = spec.partition(":")
    if kind == "none":
        return True
    if kind == "http":
        port, _, path = rest.partition("/")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=2) as reply:
            return 200 <= int(reply.status) < 300
    if kind == "grpc":
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{rest}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            except grpc.RpcError as exc:
                sys.stderr.write(f"healthcheck: grpc health check failed: {exc}\n")
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    raise ValueError(f"TANDEM_HEALTHCHECK={spec!r}: expected http:PORT/PATH, grpc:PORT or none")


if __name__ == "__main__":
    try:
        ok = check(os.environ.get("TANDEM_HEALTHCHECK", "grpc:50051"))
    except (
        OSError,
        ValueError,
    ) as exc:  # unreachable (urllib errors are OSErrors) or bad spec
        sys.stderr.write(f"healthcheck: {exc}\n")
        ok = False
    sys.exit(0 if ok else 1)
