# Build: the same `cargo build --release --locked` that `make` runs.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin weir

# Run: no shell, a numeric non-root user, one binary.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/weir /usr/local/bin/weir
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/weir", "run"]
