# syntax=docker/dockerfile:1
# Ward's container image.
#   docker build -t ward .
#   docker run -p 8080:8080 -v ward-data:/var/lib/ward ward
# The apt-get lists below are the sections "build" and "runtime" of deploy/packages.txt,
# the one list of Debian packages (scripts/serve and .ci/run read it);
# tests/packages/check.sh fails when they differ. CI lints this file with hadolint.

# Build stage: the Rust toolchain on Debian 12 plus the packages the build needs.
FROM rust:1.95-bookworm AS build
# No version pins (DL3008): the packages come from Debian 12's stable and security suites,
# whose versions change only with security fixes; pinning them would make the build fail
# as soon as a fix replaces the pinned version. The FROM tags pin the distribution.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        gcc libc6-dev pkg-config libssl-dev libxmlsec1-dev libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ward \
    && install -D -m 0755 target/release/ward /out/ward

# Runtime stage: only the shared libraries the binary links (and CA certificates).
FROM debian:bookworm-slim
# Same reason as above for not pinning versions (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates libssl3 libxml2 libxmlsec1 libxmlsec1-openssl libxslt1.1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ward \
    && useradd --system --uid 10001 --gid ward --home-dir /var/lib/ward --no-create-home \
        --shell /usr/sbin/nologin ward \
    && install -d -o ward -g ward -m 0700 /var/lib/ward
COPY --from=build /out/ward /usr/local/bin/ward
ENV WARD_BIND=0.0.0.0:8080 \
    WARD_DATA_DIR=/var/lib/ward
# Numeric, so runtimes that enforce "non-root" can check it (terraform's run_as_user).
USER 10001:10001
WORKDIR /var/lib/ward
VOLUME /var/lib/ward
EXPOSE 8080
# `ward healthcheck` exits 0 when GET http://$WARD_BIND/healthz answers 200: no curl needed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["ward", "healthcheck"]
# Ward drains on SIGTERM (open WebSockets closed, in-flight requests finished) and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ward"]
CMD ["serve"]
