#!/usr/bin/env bash
# One GPU session's work, in steps that each fit a rationed GPU (at most 10 minutes a command,
# about 30 minutes in all), for a machine with CUDA torch + triton + pytest-benchmark (no tox):
#
#   bash perf/run_gpu.sh smoke OUT    # <= 8 min: the CUDA spec on every implementation at `ci`,
#                                     #   the ceilings, one benchmark point per entry x impl x mode
#   bash perf/run_gpu.sh full 1 OUT   # the full sweep in four parts, each <= 9 min:
#   bash perf/run_gpu.sh full 2 OUT   #   1 token_mixer bf16, 2 token_mixer fp32,
#   bash perf/run_gpu.sh full 3 OUT   #   3 quadratic_attention,
#   bash perf/run_gpu.sh full 4 OUT   #   4 per_token_ffn, layer_norm, rms_norm
#   bash perf/run_gpu.sh report OUT   # history (latest vs previous vs best) and plots
#   bash perf/run_gpu.sh lab OUT      # <= 9.5 min: the lab's shakespeare-char to val loss 1.47
#
# Every step writes under OUT: its log, the history JSON it saved, and (report) the plots.
# The parts of one sweep share MIXOLOGY_BENCH_SESSION (default: today's date), so the history
# reads them as one run. Commit perf/history and perf/plots (or OUT's copies) afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:?usage: run_gpu.sh smoke|full PART|report|lab OUT}
if [ "$step" = full ]; then part=${2:?full needs a part: 1 2 3 4}; out=${3:?OUT}; else out=${2:?OUT}; fi
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MIXOLOGY_DEVICE=cuda \
       TRITON_INTERPRET=0 MIXOLOGY_BENCH_SESSION=${MIXOLOGY_BENCH_SESSION:-gpu-$(date +%Y-%m-%d)}
key=$(python -c 'from mixology.bench.timing import device_key; print(device_key("cuda"))')
saved() {  # copy the history files this step wrote into OUT
  find perf/history -name '*.json' -newer "$out/.start" -exec cp {} "$out/" \; 2>/dev/null || true
}
touch "$out/.start"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
} | tee "$out/device.txt"

case "$step" in
  smoke)
    # the CUDA spec: every op x implementation x property, ci profile (kernel tier included)
    timeout 330 python -m mixology verify --device cuda --profile ci 2>&1 | tee "$out/spec-cuda.txt" | tail -40 || true
    # ceilings + one point per entry x implementation x mode, kept apart from the full history
    timeout 120 python -m mixology bench --device cuda --sizes smoke --storage "$out/smoke-history" \
      -- -q 2>&1 | tee "$out/bench-smoke.txt" | tail -40 || true
    ;;
  full)
    case "$part" in
      1) k="token_mixer and bf16" ;;
      2) k="token_mixer and not bf16" ;;
      3) k="quadratic_attention" ;;
      4) k="per_token_ffn or layer_norm or rms_norm" ;;
      *) echo "run_gpu.sh: unknown part $part (1-4)" >&2; exit 2 ;;
    esac
    timeout 540 python -m mixology bench --device cuda --sizes full -- -q -k "$k" 2>&1 \
      | tee "$out/bench-full-$part.txt" | tail -30 || true
    saved
    ;;
  lab)
    # nanoGPT's shakespeare-char recipe (5000 steps) to validation loss 1.47, and its wall
    # time; a run cut short by the limit still reports what it reached
    timeout 560 python perf/lab_gpu.py --out "$out/lab" --runs /tmp/mixology-lab-gpu 2>&1 \
      | tee "$out/lab.txt" | tail -5 || python perf/lab_gpu.py --report-only --out "$out/lab" \
      --runs /tmp/mixology-lab-gpu | tee -a "$out/lab.txt"
    ;;
  report)
    python -m mixology history --no-gate --device-key "$key" 2>&1 | tee "$out/history.txt" | tail -80
    python perf/claims.py --device-key "$key" --markdown "$out/claims.md" | tail -40
    mkdir -p "$out/plots" && cp -r "perf/plots/$key" "$out/plots/" 2>/dev/null || true
    ;;
  *) echo "run_gpu.sh: unknown step $step (smoke | full PART | report | lab)" >&2; exit 2 ;;
esac
rm -f "$out/.start"
