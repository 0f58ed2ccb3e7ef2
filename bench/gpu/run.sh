#!/usr/bin/env bash
# GPU benchmark (issue 15): tracelm's LoRA fine-tuning tokens/s and MFU, and
# generation tokens/s, on a Llama-2-7B-shaped model with random bf16 weights,
# against Hugging Face transformers + PEFT doing the same steps on the same
# GPU in the same run; prints both JSON lines and the ratios.
#
# Usage: bench/gpu/run.sh [--tiny] [--build] [--offline DEBS] [extra args for both programs]
#   --build          first build bench_gpu_lora against the CUDA PyTorch (scripts/build --cuda)
#   --offline DEBS   build with scripts/build-offline from .debs fetched beforehand
#   --tiny           a tiny model on the CPU (checks the script and the C++ program
#                    without a GPU; the Hugging Face side runs when transformers
#                    and peft import)
# On a bare GPU machine (CUDA, CMake, g++, a Python with CUDA PyTorch,
# transformers and peft; no -dev packages, no network): fetch the packages on
# a Debian 12 machine first (scripts/build-offline fetch .debs: 15 MB; the
# directory is git-ignored, so carry it along), then run there
#   bench/gpu/run.sh --offline .debs
# which builds only bench_gpu_lora (a few minutes on 16 cores) and runs both.
# Environment: PYTHON (default python3), PEAK_TFLOPS (default: by GPU name:
# H100/H200 989, A100 312, L40S 362), CONTEXT (default 4096; --fit halves it
# until a step fits).
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-python3}
tiny=0 build=0 debs=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) tiny=1 ;;
    --build) build=1 ;;
    --offline) debs=$2; build=1; shift ;;
    *) extra+=("$1") ;;
  esac
  shift
done
if [ "$tiny" = 1 ]; then
  dir=${TRACELM_BUILD_DIR:-build}
  args=(--tiny --device cpu)
else
  dir=${TRACELM_BUILD_DIR:-build-cuda}
  name=$("$py" -c 'import torch; print(torch.cuda.get_device_name(0))')
  case "$name" in
    *H100*|*H200*|*GH200*) peak=989 ;;
    *A100*) peak=312 ;;
    *L40S*) peak=362 ;;
    *) peak=0 ;;
  esac
  peak=${PEAK_TFLOPS:-$peak}
  [ "$peak" != 0 ] || { echo "run.sh: unknown GPU '$name': set PEAK_TFLOPS (dense bf16)" >&2; exit 1; }
  echo "# GPU: $name, dense bf16 peak $peak TFLOP/s" >&2
  args=(--device cuda --context "${CONTEXT:-4096}" --peak-tflops "$peak")
fi
if [ "$build" = 1 ]; then
  export TRACELM_BUILD_DIR=$dir TRACELM_TARGETS=bench_gpu_lora
  cuda=()
  [ "$tiny" = 1 ] || cuda=(--cuda)
  if [ -n "$debs" ]; then
    scripts/build-offline build "$debs" "${cuda[@]}" -DTRACELM_TESTS=OFF >&2
  else
    scripts/build "${cuda[@]}" -DTRACELM_TESTS=OFF >&2
  fi
fi
bin="$dir/bench/bench_gpu_lora"
[ -x "$bin" ] || { echo "run.sh: $bin not built (use --build)" >&2; exit 1; }
ours=$("$bin" "${args[@]}" --fit "${extra[@]}")
echo "$ours"
ctx=$(echo "$ours" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["context"])')
if ! "$py" -c 'import transformers, peft' 2>/dev/null; then
  echo "# Hugging Face reference skipped: $py cannot import transformers and peft" >&2
  exit 0
fi
# The same context as tracelm reached (if HF runs out of memory there, it says so).
theirs=$("$py" bench/gpu/hf_peft_bench.py "${args[@]}" "${extra[@]}" --context "$ctx") || {
  echo "# Hugging Face + PEFT failed at context $ctx (see above)" >&2; exit 1; }
echo "$theirs"
"$py" - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"# context {a['context']}: training tokens/s tracelm {a['train_tokens_per_s']:.0f}, "
      f"HF+PEFT {b['train_tokens_per_s']:.0f}, ratio {a['train_tokens_per_s'] / b['train_tokens_per_s']:.2f}; "
      f"MFU tracelm {100 * a['mfu']:.1f}%, HF+PEFT {100 * b['mfu']:.1f}% "
      f"(6N count: {100 * a['mfu_6n']:.1f}% vs {100 * b['mfu_6n']:.1f}%)")
print(f"# generation (batch {a['gen_batch']}, {a['gen_new_tokens']} new tokens): tokens/s tracelm "
      f"{a['gen_tokens_per_s']:.0f}, HF generate {b['gen_tokens_per_s']:.0f}, "
      f"ratio {a['gen_tokens_per_s'] / b['gen_tokens_per_s']:.2f}")
PY
