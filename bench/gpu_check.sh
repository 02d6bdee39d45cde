#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU, run in one go: every GPU figure first
# (bench/gpu_check.py: training in fp32/bf16/fp16/torch.compile, 1 GPU vs all of them (DDP;
# "skipped: 1 GPU" on one), time to 98% held-out, two jobs on one GPU, a scheduler job on
# cuda:0, evaluation, ONNX Runtime CUDA, the inference table),
# then serving where batching pays (bench/serve_load.py: ResNet-18 on the GPU through the
# server's pytorch backend, batching on vs off at 32 clients), then the GPU-only tests, then
# the engine-vs-DataLoader training throughput.
# Usage: bash bench/gpu_check.sh [OUT_DIR]      (bash bench/gpu_check.sh --plan: the plan only)
# Results (gpu_check.json after every stage, gpu_check.md, the tests' log and junit xml, the
# whole log) land in OUT_DIR, default bench/results.
#
# Real MNIST: $STUDIO_MNIST_DIR, else ../shared/data/mnist-t10k, else .device/mnist-t10k (what
# bench/stage_device.sh copies for a machine that gets only the checkout; see testkit/mnist.py).
# TensorRT: whichever of tensorrt / tensorrt_rtx imports; else wheels carried in .device/wheels;
# else one quick pip try where a package registry answers. Where no library can run on this GPU
# (none installed, or TensorRT-RTX on a data-centre GPU such as the H200), the TensorRT rows and
# tests are skipped with that reason.
#
# Rehearsal without a GPU (checks this script, gives no GPU figures): GPU_CHECK_DEVICE=cpu and
# GPU_CHECK_STAGES=setup,... (a subset of gpu_check.py's stages).
#
# Each step has a time limit; the limits are printed before anything starts and add up to
# 9 min 10 s (bench/stage_device.sh gives the device call's timeout). A step that fails or
# runs out of time does not stop the next one.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
# The GPU machine gets the checkout but cannot install it (no registry): job workers and the
# tests import the project from here. (Where `make install` ran, the project is installed.)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
FIGURES_ARGS=(--device "${GPU_CHECK_DEVICE:-cuda}" --stages "${GPU_CHECK_STAGES:-}")

# name|limit in seconds|what
STEPS=(
  "preflight|30|CUDA and the staged MNIST, else stop with the reason"
  "tensorrt|20|a TensorRT library: carried wheels, or pip where a registry answers"
  "figures|310|bench/gpu_check.py, its stages listed below with their own limits"
  "serving|80|bench/serve_load.py: ResNet-18 32x32 and 224x224 on the GPU, batching on/off"
  "tests|90|pytest tests/gpu, 70 s at most per test"
  "throughput|20|bench/train_throughput.py --device cuda (engine vs DataLoader)"
)
# A step's limit; GPU_CHECK_LIMIT_<STEP> (e.g. GPU_CHECK_LIMIT_PREFLIGHT=120) overrides it, for
# a machine much slower than the GPU machine (a busy CPU box importing torch).
# With 2 or more GPUs the 1-vs-N-GPU training row runs (gpu_check.py's train-ddp: 45 s, not
# the 5 s it takes to say "skipped: 1 GPU"): the figures step gets the 40 s more.
GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
limit_of() {
  local s override="GPU_CHECK_LIMIT_${1^^}"
  if [ -n "${!override:-}" ]; then echo "${!override}"; return; fi
  for s in "${STEPS[@]}"; do
    [ "${s%%|*}" = "$1" ] || continue
    s=${s#*|}; s=${s%%|*}
    [ "$1" = figures ] && [ "${GPUS:-0}" -ge 2 ] && s=$((s + 40))
    echo "$s"
  done
}
print_plan() {
  local s total=0 name rest limit
  echo "GPU check plan (each step's time limit):"
  for s in "${STEPS[@]}"; do
    name=${s%%|*}; rest=${s#*|}; limit=$(limit_of "$name")
    printf '  %-11s %4d s  %s\n' "$name" "$limit" "${rest#*|}"
    total=$((total + limit))
  done
  printf '  total       %4d s (%d min %02d s)\n' "$total" $((total / 60)) $((total % 60))
}
if [ "${1:-}" = "--plan" ]; then
  print_plan
  "$PY" bench/gpu_check.py --plan
  exit 0
fi

# 1. Preflight: one line and a non-zero exit where the run cannot give its figures.
timeout -s KILL "$(limit_of preflight)" "$PY" bench/gpu_check.py --preflight "${FIGURES_ARGS[@]}"
case $? in
  0) ;;
  137) echo "gpu check refused: the preflight ran past its $(limit_of preflight) s"; exit 2 ;;
  *) exit 2 ;;
esac

OUT=${1:-bench/results}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
TEE_PID=$!
print_plan
"$PY" bench/gpu_check.py --plan
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
declare -A STATUS

# 2. TensorRT: never more than its limit, and no pip attempt where no registry answers.
trt_import() { "$PY" -c "import tensorrt" 2>/dev/null || "$PY" -c "import tensorrt_rtx" 2>/dev/null; }
if trt_import; then
  STATUS[tensorrt]="installed"
elif compgen -G ".device/wheels/*.whl" >/dev/null; then
  timeout "$(limit_of tensorrt)" "$PY" -m pip install -q --no-index --no-deps .device/wheels/*.whl \
    && STATUS[tensorrt]="installed from .device/wheels" || STATUS[tensorrt]="carried wheels failed"
elif timeout 5 "$PY" -c "import socket; socket.create_connection(('pypi.org', 443), 3)" 2>/dev/null; then
  timeout "$(limit_of tensorrt)" "$PY" -m pip install -q --retries 0 --timeout 8 tensorrt-rtx \
    && STATUS[tensorrt]="pip installed tensorrt-rtx" || STATUS[tensorrt]="pip install failed"
else
  STATUS[tensorrt]="none: no package registry reachable and no wheels carried"
fi
echo "TensorRT library: ${STATUS[tensorrt]}"
timeout 15 "$PY" -c "from trt.runtime import tensorrt_unusable_reason as why
print('TensorRT on this GPU:', why() or 'can run')"

# 3. The figures first, so nothing after them can cost them.
timeout "$(limit_of figures)" "$PY" bench/gpu_check.py --out "$OUT" "${FIGURES_ARGS[@]}"
STATUS[figures]="exit $?"

# 3b. Serving where batching pays (issue 28): the server's pytorch backend on the GPU (the
# machine has PyTorch, no TensorRT). Its web stack (starlette, uvicorn, python-multipart,
# httptools) is not in the GPU machine's image: bench/stage_device.sh carries the wheels,
# installed into a folder of their own (the image stays as it is).
serve_site=$(mktemp -d)
if "$PY" -c "import starlette, uvicorn" 2>/dev/null \
    || { compgen -G ".device/serve-wheels/*.whl" >/dev/null \
         && "$PY" -m pip install -q --no-index --no-deps --target "$serve_site" \
              .device/serve-wheels/*.whl; }; then
  STATUS[serving]=""
  for size in 32 224; do
    PYTHONPATH="$PYTHONPATH:$serve_site" timeout "$(( $(limit_of serving) / 2 ))" "$PY" \
      bench/serve_load.py --network resnet18 --size "$size" --encoding binary \
      --backend pytorch --device "${GPU_CHECK_DEVICE:-cuda}" --levels 32 --seconds 3 --max-delay-ms 5 \
      --out "$OUT/serve_load-resnet18-$size-binary-pytorch.json"
    STATUS[serving]+="${size}x${size}: exit $? "
  done
else
  STATUS[serving]="skipped: no starlette/uvicorn here and no wheels in .device/serve-wheels"
fi
rm -rf "$serve_site"
echo "serving: ${STATUS[serving]}"

# 4. The GPU tests: a per-test limit (signal method: a slow test fails alone, the session and
# its junit xml go on) inside the step's outer one.
timeout "$(limit_of tests)" "$PY" -m pytest tests/gpu -q -m gpu -p no:cacheprovider -rs \
  --timeout 70 --timeout-method signal --junitxml="$OUT/gpu_tests.xml" 2>&1 \
  | tee "$OUT/gpu_tests.txt"
STATUS[tests]="exit ${PIPESTATUS[0]}"

# 5. Training throughput on CUDA against the usual DataLoader loop.
timeout "$(limit_of throughput)" "$PY" bench/train_throughput.py --device cuda --epochs 3 \
  --out "$OUT/train_throughput_cuda.json"
STATUS[throughput]="exit $?"

echo "GPU check done (124 = ran out of its time limit):"
for step in tensorrt figures serving tests throughput; do echo "  $step: ${STATUS[$step]}"; done
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null  # the log complete before the device tool collects $OUT
