#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: GPU-only tests, LeNet training images/s on CUDA,
# and the inference benchmark table; everything lands in bench/results/ (json + markdown).
# Installs nothing but what pip can get (tensorrt-rtx when missing; if that fails, the
# TensorRT rows are reported as skipped with the reason). Finishes within ~8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
mkdir -p bench/results
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c "import tensorrt" 2>/dev/null || "$PY" -c "import tensorrt_rtx" 2>/dev/null \
  || timeout 120 "$PY" -m pip install -q tensorrt-rtx \
  || echo "tensorrt-rtx could not be installed: TensorRT rows will be skipped"
timeout 240 "$PY" -m pytest tests/gpu -q -m gpu -p no:cacheprovider \
  --junitxml=bench/results/gpu_tests.xml 2>&1 | tee bench/results/gpu_tests.txt
echo "gpu tests exit status: ${PIPESTATUS[0]}"
timeout 300 "$PY" bench/gpu_check.py --out bench/results
timeout 120 "$PY" bench/train_throughput.py --device cuda --epochs 3 \
  --out bench/results/train_throughput_cuda.json
