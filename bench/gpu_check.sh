#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: GPU-only tests, LeNet training images/s on CUDA,
# and the inference benchmark table. Usage: bash bench/gpu_check.sh [OUT_DIR]
# Results (json, markdown, the tests' log and junit xml) land in OUT_DIR, default bench/results.
#
# Real MNIST: $STUDIO_MNIST_DIR, else ../shared/data/mnist-t10k, else .device/mnist-t10k (what
# bench/stage_device.sh copies for a machine that gets only the checkout; see tests/conftest.py). TensorRT: whichever of tensorrt / tensorrt_rtx imports; else wheels carried
# in .device/wheels, else one quick pip try; if none works the TensorRT rows and tests are
# skipped with the reason. The time limits below add up to under 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results}
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if ! "$PY" -c "import tensorrt" 2>/dev/null && ! "$PY" -c "import tensorrt_rtx" 2>/dev/null; then
  if compgen -G ".device/wheels/*.whl" >/dev/null; then
    timeout 60 "$PY" -m pip install -q --no-index --no-deps .device/wheels/*.whl
  else
    timeout 45 "$PY" -m pip install -q --retries 0 --timeout 10 tensorrt-rtx
  fi || echo "no TensorRT library could be installed: TensorRT rows and tests are skipped"
fi
timeout 180 "$PY" -m pytest tests/gpu -q -m gpu -p no:cacheprovider -rs \
  --junitxml="$OUT/gpu_tests.xml" 2>&1 | tee "$OUT/gpu_tests.txt"
echo "gpu tests exit status: ${PIPESTATUS[0]}"
timeout 180 "$PY" bench/gpu_check.py --out "$OUT"
timeout 60 "$PY" bench/train_throughput.py --device cuda --epochs 3 \
  --out "$OUT/train_throughput_cuda.json"
