#!/usr/bin/env bash
# The GPU steps, for a machine with CUDA torch + triton + pytest-benchmark and no tox (mixology
# from this checkout, on PYTHONPATH). A drawn GPU runs `session` first: one command of at most
# 9 minutes that brings back what matters most.
#
#   bash perf/run_gpu.sh session OUT  # <= 9 min, each step in its own time budget:
#                                     #   1. the CUDA spec of every Triton and compiled
#                                     #      implementation, ci, both size tiers   (300 s)
#                                     #   2. the ceilings (copy, bf16 matmul) and
#                                     #   3. the headline benchmark points          (150 s)
#                                     #   4. a short lab run: tokens/s, the loss reached
#                                     #                                  (the rest, <= 60 s)
#                                     #   into OUT: spec-cuda.txt, summary.md (the spec's
#                                     #   verdict, the seed's claims, the figures), the
#                                     #   history JSON and up to 4 plots
#   bash perf/run_gpu.sh dry OUT      # the same steps on CPU at tiny sizes (<= 3 min; CI runs it)
#   bash perf/run_gpu.sh full 1 OUT   # later draws: the full sweep in four parts, each <= 9 min:
#   bash perf/run_gpu.sh full 2 OUT   #   1 token_mixer bf16, 2 token_mixer fp32,
#   bash perf/run_gpu.sh full 3 OUT   #   3 quadratic_attention,
#   bash perf/run_gpu.sh full 4 OUT   #   4 per_token_ffn, layer_norm, rms_norm
#   bash perf/run_gpu.sh report OUT   # history (latest vs previous vs best), plots, claims
#   bash perf/run_gpu.sh lab OUT      # <= 9.5 min: the lab's shakespeare-char to val loss 1.47
#
# The parts of one sweep share MIXOLOGY_BENCH_SESSION (default: today's date), so the history
# reads them as one run. Commit what OUT holds: the history JSON into
# perf/history/<device_key>/<machine>/ (summary.md names both), the plots into perf/plots/.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: run_gpu.sh session|dry|full PART|report|lab OUT"
step=${1:?$usage}
if [ "$step" = full ]; then part=${2:?full needs a part: 1 2 3 4}; out=${3:?OUT}; else out=${2:?OUT}; fi
case "$step" in session|dry|full|report|lab) ;; *) echo "run_gpu.sh: unknown step $step ($usage)" >&2; exit 2 ;; esac
device=cuda
if [ "$step" = dry ]; then device=cpu; fi
if [ "$device" = cuda ] && ! python -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  echo "run_gpu.sh $step: no CUDA device here (torch.cuda.is_available() is False); on CPU run: bash perf/run_gpu.sh dry OUT" >&2
  exit 2
fi
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MIXOLOGY_DEVICE=$device \
       MIXOLOGY_BENCH_SESSION=${MIXOLOGY_BENCH_SESSION:-gpu-$(date +%Y-%m-%d)}
if [ "$device" = cuda ]; then export TRITON_INTERPRET=0; else export TRITON_INTERPRET=1; fi
key=$(python -c "from mixology.bench.timing import device_key; print(device_key('$device'))")
started=$(date +%s)
elapsed() { echo $(( $(date +%s) - started )); }

session() {  # session and dry: the spec's, the bench's and the lab's budgets, and the end (s)
  local spec_s=$1 bench_s=$2 lab_s=$3 end=$4 t0
  local jobs=$(( $(nproc) > 8 ? 8 : $(nproc) ))
  local select=(--mixology-impl triton --mixology-impl triton_split --mixology-impl compiled)
  local sizes=() lab=(--preset shakespeare-char --set eval_every=50)
  if [ "$device" = cpu ]; then  # dry: the same steps, tiny
    select=(--mixology-op rms_norm --mixology-impl triton); sizes=(--mixology-sizes small); jobs=1
    lab=(--preset shakespeare-char-cpu --set steps=12 --set eval_every=6 --set eval_windows=4
         --set eval_all=false --set sample_tokens=0 --set stats=false)
  fi
  # mixology's pytest plugin: its entry point where mixology is installed, else by name
  local plugin=()
  python -c 'import importlib.metadata as m, sys; sys.exit(any(e.value == "mixology.verify.pytest_plugin" for e in m.entry_points(group="pytest11")))' \
    && plugin=(-p mixology.verify.pytest_plugin)
  # 1. the CUDA spec: every outcome is appended as it comes, so a step cut short keeps its own
  t0=$(date +%s); mkdir -p "$tmp/empty"
  timeout "$spec_s" python -m pytest "$tmp/empty" -q -p no:cacheprovider "${plugin[@]}" \
    --mixology-verify --mixology-device "$device" --mixology-profile ci "${select[@]}" "${sizes[@]}" \
    --mixology-report "$tmp/outcomes.jsonl" $( [ "$jobs" -gt 1 ] && echo "-n $jobs" ) \
    > "$tmp/spec-pytest.txt" 2>&1 || true
  python - "$tmp/outcomes.jsonl" "$out/spec-cuda.txt" "$device" "$(( $(date +%s) - t0 ))" <<'EOF'
import json, sys
src, dst, device, secs = sys.argv[1:]
rows = [json.loads(l) for l in open(src)] if __import__("os").path.exists(src) else []
bad = [r for r in rows if not r["ok"]]
with open(dst, "w") as f:
    f.write(f"the {device} spec of the triton and compiled implementations (ci, both tiers): "
            f"{len(rows) - len(bad)} passed, {len(bad)} failed, in {secs} s\n\n")
    for r in rows:
        f.write(f"{'pass' if r['ok'] else 'FAIL'}  {r['op']}/{r['prop']} [{r['impl']}] "
                f"{r['seconds']:.1f}s ({r['sizes']})\n")
    for r in bad:
        f.write(f"\nFAIL {r['op']}/{r['prop']} [{r['impl']}] ({r['sizes']})\n")
        for x in r["failures"]:
            f.write(f"  error: {x['error']}\n  counterexample: {x['counterexample']}\n"
                    f"  replay: {x['replay']}\n")
print(open(dst).readline().strip())
EOF
  # 2 and 3. the ceilings and the headline points, saved into one history folder (the time
  # the spec left over goes to them, keeping the lab's)
  local spare=$(( end - $(elapsed) - bench_s - lab_s ))
  bench_s=$(( spare > 0 ? bench_s + spare : bench_s ))
  t0=$(date +%s)
  timeout "$bench_s" python -m mixology bench --device "$device" --sizes headline \
    --storage "$tmp/history" -- -q > "$tmp/bench.txt" 2>&1 || echo "bench: stopped at its budget ($bench_s s)" >> "$tmp/bench.txt"
  local bench_t=$(( $(date +%s) - t0 ))
  find "$tmp/history" -name '*.json' -exec cp {} "$out/" \; 2>/dev/null || true
  python -m mixology history --no-gate --storage "$tmp/history" --plots "$tmp/plots" > "$tmp/history.txt" 2>&1 || true
  python perf/claims.py --storage "$tmp/history" --markdown "$tmp/claims.md" > /dev/null 2>&1 || true
  local n=0
  for pattern in 'token_mixer_fwd_Tsweep*' 'token_mixer_bwd_Tsweep*' 'quadratic_attention_fwd_*' 'rms_norm_fwd*'; do
    f=$(find "$tmp/plots" -name "$pattern" 2>/dev/null | head -1 || true)
    if [ -n "$f" ] && [ "$n" -lt 4 ]; then cp "$f" "$out/"; n=$((n + 1)); fi
  done
  # 4. if time is left: a short lab run (tokens/s, the loss reached)
  local left=$(( end - $(elapsed) ))
  left=$(( left > lab_s ? lab_s : left ))
  t0=$(date +%s)
  if [ "$left" -ge 20 ]; then
    timeout "$left" python perf/lab_gpu.py --out "$tmp/lab" --runs "$tmp/lab-run" "${lab[@]}" \
      > "$tmp/lab.txt" 2>&1 || python perf/lab_gpu.py --report-only --out "$tmp/lab" \
      --runs "$tmp/lab-run" "${lab[@]}" >> "$tmp/lab.txt" 2>&1 || true
  fi
  local lab_t=$(( $(date +%s) - t0 ))
  {
    echo "# GPU session: $(date -u +%Y-%m-%d), $key"
    echo
    python -c "import platform, torch; print(f'torch {torch.__version__}, triton', __import__('triton').__version__, f', Python {platform.python_version()}')" 2>/dev/null || true
    echo
    echo "## 1. The spec ($(head -1 "$out/spec-cuda.txt"))"
    echo
    grep -E '^FAIL ' "$out/spec-cuda.txt" | head -40 | sed 's/^/- /' || true
    echo
    echo "## 2-3. Ceilings and the headline points (bench: $bench_t s)"
    echo
    echo "History JSON: $(cd "$out" && ls ./*.json 2>/dev/null | head -1 || true) (commit it to perf/history/$key/<machine>/)"
    echo
    if [ -f "$tmp/claims.md" ]; then sed '1,2d' "$tmp/claims.md"; else tail -5 "$tmp/bench.txt"; fi
    echo
    echo "## 4. Lab ($lab_t s)"
    echo
    cat "$tmp/lab/gpu.md" 2>/dev/null || echo "not run: no time left"
    echo
    echo "Wall time: $(elapsed) s."
  } > "$out/summary.md"
  cat "$out/summary.md"
}

case "$step" in
  session) session 300 150 60 525 ;;
  dry)     session 50 100 25 175 ;;
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
    find perf/history -name '*.json' -newer "$out/bench-full-$part.txt" -exec cp {} "$out/" \; 2>/dev/null || true
    ;;
  lab)
    # nanoGPT's shakespeare-char recipe (5000 steps) to validation loss 1.47, and its wall
    # time; a run cut short by the limit still reports what it reached
    timeout 560 python perf/lab_gpu.py --out "$out/lab" --runs "$tmp/lab-run" 2>&1 \
      | tee "$out/lab.txt" | tail -5 || python perf/lab_gpu.py --report-only --out "$out/lab" \
      --runs "$tmp/lab-run" | tee -a "$out/lab.txt"
    ;;
  report)
    python -m mixology history --no-gate --device-key "$key" 2>&1 | tee "$out/history.txt" | tail -80
    python perf/claims.py --device-key "$key" --markdown "$out/claims.md" | tail -40
    mkdir -p "$out/plots" && cp -r "perf/plots/$key" "$out/plots/" 2>/dev/null || true
    ;;
esac
