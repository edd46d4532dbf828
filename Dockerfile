# syntax=docker/dockerfile:1
# spectralx: build the release binary with the Swift toolchain image, run it on bookworm-slim.
#   docker build -t spectralx .
#   docker run --rm -p 8080:8080 -v spectralx-cache:/var/lib/spectralx spectralx            # demo store
#   docker run --rm -p 8080:8080 -v /srv/models:/models:ro -e SPECTRALX_MODELS=/models spectralx
ARG SWIFT_IMAGE=swift:6.1-bookworm

FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas-dev libssl-dev zlib1g-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not re-fetch them.
# (the glob keeps the COPY valid when Package.resolved is absent, as in a git checkout)
COPY Package.swift Package.resolve[d] ./
RUN swift package resolve
COPY . .
RUN swift build -c release --product spectralx --static-swift-stdlib \
 && install -D "$(swift build -c release --show-bin-path)/spectralx" /out/spectralx

FROM debian:bookworm-slim
# libopenblas0: the benchmark's reference GEMM; libssl3: TLS and SHA-256; zlib1g: Deflate GeoTIFFs;
# libpq5: the fleet's job database (--jobs-db).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0 libssl3 zlib1g libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/spectralx spectralx
COPY --from=build /out/spectralx /usr/local/bin/spectralx
USER spectralx
WORKDIR /var/lib/spectralx
# Every serve flag has a SPECTRALX_* variable; without SPECTRALX_MODELS the demo store is created in the cache.
ENV SPECTRALX_HOST=0.0.0.0 \
    SPECTRALX_PORT=8080 \
    SPECTRALX_CACHE=/var/lib/spectralx/cache \
    SPECTRALX_LOG_LEVEL=info \
    OPENBLAS_NUM_THREADS=0
EXPOSE 8080
VOLUME ["/var/lib/spectralx"]
# Liveness only; readiness (/readyz) belongs to the orchestrator. The demo store takes ~30 s on first start.
# `spectralx healthcheck` reads SPECTRALX_HOST/PORT/TLS_CERT like `serve`, so `-e SPECTRALX_PORT=9000`
# or TLS keep the check right (and the image needs no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["/usr/local/bin/spectralx", "healthcheck", "--timeout", "3"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/spectralx"]
CMD ["serve"]
