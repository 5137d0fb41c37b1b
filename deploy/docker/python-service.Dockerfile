# syntax=docker/dockerfile:1.7
# One image for tandem's Python services. The default command serves the inference service over
# gRPC; override the command for the report consumer:
#   python -m tandem consume examples.gateway.services.reports:app --redis "$REDIS_URL" \
#     --stream reports --group reporters --processes 2
#
# Build from the repository root:
#   docker build -f deploy/docker/python-service.Dockerfile -t tandem/python-service:0.1.0 .

ARG PYTHON_VERSION=3.12
ARG DEBIAN_RELEASE=bookworm

# ---- 1. build every wheel (compilers stay in this stage) -------------------------------------
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS wheels
WORKDIR /src
COPY python ./python
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --wheel-dir /wheels './python[all]'

# ---- 2. runtime -----------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    TANDEM_HEALTHCHECK=grpc:50051
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels 'tandem[all]' \
 && groupadd --gid 10001 tandem \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin tandem
WORKDIR /app
COPY examples/gateway/services ./examples/gateway/services
COPY deploy/docker/healthcheck.py /usr/local/bin/tandem-healthcheck
USER 10001:10001
EXPOSE 50051
# The consumer has no port: run it with TANDEM_HEALTHCHECK=none (Kubernetes ignores HEALTHCHECK
# and uses the probes in deploy/k8s instead).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/bin/tandem-healthcheck"]
ENTRYPOINT ["python", "-m", "tandem"]
CMD ["serve", "examples.gateway.services.inference:app", "--port", "50051", "--workers", "4"]
