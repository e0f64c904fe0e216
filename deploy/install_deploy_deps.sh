#!/usr/bin/env bash
# install_deploy_deps.sh - the Debian bookworm packages the deployment tests
# need beyond tools/install_deps.sh: podman/buildah/runc/debootstrap for
# deploy/container_test.sh (no Docker engine needed), nginx for
# tests/integration/test_lb.sh, python3-yaml for test_deploy_manifests.py.
# Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    podman buildah runc debootstrap uidmap fuse-overlayfs slirp4netns \
    containernetworking-plugins iptables \
    nginx python3-yaml curl
