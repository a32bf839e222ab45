# syntax=docker/dockerfile:1
# Build: docker build -t aurora2bq .   The image holds only the binary (no test emulators).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The workspace manifest names testing/ as a member, so it is copied to build; only the
# aurora2bq binary leaves this stage.
# The image has no .git: pass the commit for `--version`
# (docker build --build-arg AURORA2BQ_COMMIT=$(git rev-parse --short=12 HEAD) .).
ARG AURORA2BQ_COMMIT=unknown
ENV AURORA2BQ_COMMIT=$AURORA2BQ_COMMIT
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# The RDS CA bundle, compiled into the binary for RDS IAM authentication's verify-full.
COPY certs ./certs
COPY testing ./testing
RUN cargo build --release --locked --package aurora2bq --bin aurora2bq

# glibc, CA certificates and a non-root user (65532), nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/aurora2bq /usr/local/bin/aurora2bq
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/aurora2bq"]
CMD ["run", "--config", "/etc/aurora2bq/config.toml"]
