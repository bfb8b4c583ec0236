# Weir's operator image. Two ways to the same runtime stage, entrypoint and user:
#
#   public build (an engine with registry access): compiles in the build image
#     docker build -t ghcr.io/weir-dev/weir:dev .
#   local build (`make image`, buildah without a registry): takes the binary that
#   `make release` built, and a runtime base made from Debian packages (hack/image.sh)
#     --build-arg BINARY=prebuilt --build-arg RUNTIME_IMAGE=localhost/weir-runtime-base:bookworm
ARG BUILD_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
ARG BINARY=compiled

# The binary, compiled: the same `cargo build --release --locked` that `make release` runs.
FROM ${BUILD_IMAGE} AS compiled
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin weir
RUN cp target/release/weir /weir

# The binary, as `make release` left it in the build context.
FROM scratch AS prebuilt
COPY target/release/weir /weir

FROM ${BINARY} AS binary

# Run: no shell, a numeric non-root user, one binary.
FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=binary /weir /usr/local/bin/weir
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/weir", "run"]
