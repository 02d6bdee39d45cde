#!/usr/bin/env bash
# Run here (not on the GPU machine) before a device call: copies the real MNIST t10k files into
# the git-ignored .device/ folder, which the device tool carries (`carry: [".device"]`), since
# ../shared beside the checkout does not travel. They are never committed.
# Then, on the device: bash bench/gpu_check.sh "$OUT"
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .device/mnist-t10k
cp ../shared/data/mnist-t10k/t10k-*-ubyte.gz .device/mnist-t10k/
chmod u+w .device/mnist-t10k/*
du -sh .device
