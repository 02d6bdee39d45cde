#!/usr/bin/env bash
# Run here (not on the GPU machine) before a device call: copies the real MNIST t10k files into
# the git-ignored .device/ folder, which the device tool carries (`carry: [".device"]`), since
# ../shared beside the checkout does not travel. They are never committed.
# Wheels to install there (no package registry is reachable from the GPU machine) go in
# .device/wheels/*.whl; gpu_check.sh installs them. tensorrt-rtx's 228 MB do not fit the 64 MiB
# a call carries, and its engines do not run on the lent H200 (compute capability 9.0) anyway.
#
# Then one device call, with time left to rerun it inside the 15 minutes of device time:
#   run(command="bash bench/gpu_check.sh $OUT", carry=[".device"], timeout_s=580)
# and copy what comes back (gpu_check.json/.md, gpu_tests.xml/.txt, gpu_check.log,
# train_throughput_cuda.json, serve_load-resnet18-*-pytorch.json) into bench/results/.
# The server's web stack is not in the GPU machine's image either: its pure-Python wheels, the
# versions installed here, go in .device/serve-wheels (under 1 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${STUDIO_MNIST_DIR:-../shared/data/mnist-t10k}
for f in t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  [ -f "$SRC/$f" ] || { echo "error: $SRC/$f not found (set STUDIO_MNIST_DIR)" >&2; exit 2; }
done
mkdir -p .device/mnist-t10k
cp "$SRC"/t10k-*-ubyte.gz .device/mnist-t10k/
chmod u+w .device/mnist-t10k/*
mkdir -p .device/serve-wheels
PY=${PYTHON:-.venv/bin/python}
installed=$("$PY" -m pip list --format=freeze 2>/dev/null)
"$PY" -m pip download -q --no-deps --only-binary=:all: -d .device/serve-wheels \
  $(grep -iE '^(starlette|uvicorn|python-multipart)==' <<<"$installed") \
  || echo "warning: no serving wheels (the serving step will say it was skipped)" >&2
# httptools, uvicorn's C HTTP parser, is a compiled wheel: the GPU machine's CPython 3.12 one
# (its image has uvloop already).
"$PY" -m pip download -q --no-deps --only-binary=:all: -d .device/serve-wheels \
  --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  $(grep -iE '^httptools==' <<<"$installed") \
  || echo "warning: no httptools wheel (the server there parses HTTP with h11)" >&2
git check-ignore -q .device || { echo "error: .device is not git-ignored" >&2; exit 2; }
du -sh .device
echo "staged: carry [\".device\"] and run: bash bench/gpu_check.sh \$OUT"
