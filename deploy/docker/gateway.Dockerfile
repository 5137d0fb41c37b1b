# syntax=docker/dockerfile:1.7
# The reference core system: the Rust gateway (examples/gateway, binary `gateway`, :8080) plus
# Python and the tandem SDK, because the gateway launches the adapter plugin
# (`python -m tandem plugin ...`) as its own child process inside this container.
#
# Build from the repository root:
#   docker build -f deploy/docker/gateway.Dockerfile -t tandem/gateway:0.1.0 .

ARG RUST_VERSION=1.88
ARG PYTHON_VERSION=3.12
ARG DEBIAN_RELEASE=bookworm

# ---- 1. build the gateway binary (cargo caches survive between builds) ---------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# The whole (dockerignored) context: every workspace member must be present for cargo to load
# the workspace, and members change more often than this file.
COPY . .
# protox compiles proto/ in build.rs, so no protoc is needed; TLS is rustls (ring), so no OpenSSL.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --manifest-path examples/gateway/Cargo.toml --bin gateway \
 && install -D -m 0755 target/release/gateway /out/gateway

# ---- 2. build the Python wheels for the adapter plugin ---------------------------------------
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS wheels
WORKDIR /src
COPY python ./python
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --wheel-dir /wheels './python[plugin,metrics]'

# ---- 3. runtime -----------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS runtime
# GATEWAY_* are the gateway's own settings (examples/gateway/src/config.rs): listen on every
# interface, keep SQLite and reports under /var/lib/gateway (a volume in Kubernetes), and find
# Python and the services (the adapter plugin, the reconcile script) in this image.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    TANDEM_PYTHON=/usr/local/bin/python \
    GATEWAY_LISTEN=0.0.0.0:8080 \
    GATEWAY_DB=/var/lib/gateway/gateway.sqlite3 \
    GATEWAY_REPORTS_DIR=/var/lib/gateway/reports \
    GATEWAY_SERVICES_DIR=/app/examples/gateway/services \
    TANDEM_HEALTHCHECK=http:8080/healthz
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels 'tandem[plugin,metrics]' \
 && groupadd --gid 10001 tandem \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin tandem \
 && install -d -o 10001 -g 10001 /var/lib/gateway
WORKDIR /app
COPY --from=builder /out/gateway /usr/local/bin/gateway
# The gateway's Python services; the adapter plugin reuses examples/plugin-adapter/service.py.
COPY examples/gateway/services ./examples/gateway/services
COPY examples/plugin-adapter ./examples/plugin-adapter
COPY deploy/docker/healthcheck.py /usr/local/bin/tandem-healthcheck
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "/usr/local/bin/tandem-healthcheck"]
# exec form: the gateway is PID 1 and receives SIGTERM itself (it stops its plugin children).
ENTRYPOINT ["/usr/local/bin/gateway"]
