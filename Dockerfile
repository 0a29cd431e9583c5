# syntax=docker/dockerfile:1.7
# The operator image: one static-ish binary (glibc only) on distroless, non-root.
#
#   docker build -t ghcr.io/stateless-dev/stateless-operator:0.1.0 .
#
# The chart's default image (charts/stateless-operator, image.repository and
# appVersion) points here. The build is the release build the test command
# checks: cargo build --release --locked.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Only what the binary is built from (see .dockerignore). The bench target is
# declared in Cargo.toml, so its source must be present for cargo to load the
# manifest. examples/ also holds the workspace's other member (the session
# demo, examples/session-demo): cargo loads its manifest to resolve the
# workspace, though only the operator is built here.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
# Cache mounts keep the registry and the target dir between builds; the binary
# is copied out because the target dir is not part of the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin stateless-operator \
    && install -D -m 0755 target/release/stateless-operator /out/stateless-operator

# cc-debian12: glibc and libgcc for the Rust binary, CA certificates, no shell,
# no package manager; :nonroot runs as UID/GID 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="stateless-operator" \
      org.opencontainers.image.description="Kubernetes operator that keeps the application tier stateless" \
      org.opencontainers.image.source="https://github.com/stateless-dev/stateless-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/stateless-operator /usr/local/bin/stateless-operator
USER 65532:65532
# 8080: /metrics, /healthz, /readyz; 8443: the admission webhook (HTTPS).
EXPOSE 8080 8443
ENTRYPOINT ["/usr/local/bin/stateless-operator"]
CMD ["run"]
