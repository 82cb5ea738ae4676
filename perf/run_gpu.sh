#!/usr/bin/env bash
# One GPU session's work, for a machine with CUDA torch + triton + pytest-benchmark (no tox):
# the spec and tests on CUDA, one benchmark run into perf/history, then the history report and
# plots. Run it twice (two runs make a history; each full run takes several minutes).
#   bash perf/run_gpu.sh [full|quick] [OUTDIR]   # OUTDIR: also copy history + plots there
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-full}
out=${2:-}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MIXOLOGY_DEVICE=cuda TRITON_INTERPRET=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  MIXOLOGY_PROFILE=${MIXOLOGY_PROFILE:-ci} python -m pytest -q -p no:cacheprovider tests 2>&1 | tail -25
fi
python -m mixology bench --device cuda --sizes "$sizes" -- -q 2>&1 | tail -60
python -m mixology history --no-gate --device-key "$(python -c 'from mixology.perf import device_key; print(device_key("cuda"))')" | tail -60
if [ -n "$out" ]; then
  tar czf "$out/perf-results.tgz" perf/history perf/plots
fi
