#!/usr/bin/env bash
# First contact with a GPU: one command, `bash gpu-bundle/validate.sh first-contact`, that checks
# the CUDA backend in at most 8 minutes (FIRST_CONTACT_BUDGET seconds, default 480) and cannot
# pass by skipping. Copied into the bundle as first-contact.sh by scripts/build-gpu-bundle.sh.
#
# Stages, each under `timeout`; a stage that would not fit in what is left of the budget is
# marked "not run (budget spent)", which fails the run:
#   0 (30 s)  every library function the executables can look up, looked up in this
#             machine's libraries (informational), the library report (`simclr info --device
#             cuda`) and one tiny training step on the GPU; if the last two fail, stop at once
#             with the diagnostics (exit 1)
#   1         every GPU parity test (bin/simclr-lib cuda_tests, bin/cuda_*), SIMCLR_REQUIRE_GPU=1
#   2         ours: r50_1x_sk1 pretraining step, 256 images (512 views), 224 px, bf16, --profile
#   3         PyTorch eager (AMP bf16, channels_last, cudnn.benchmark) on the same step
#   4         compute-sanitizer memcheck and racecheck over the suites of our own kernels
#   5         torch.compile on the same step
#   6         r152_3x_sk1: memory plan at effective batch 4096, then one profiled micro-batch
#             step (the convolutions' share of the bf16 rate)
# Output: at most 8 files in $OUT (default ./first-contact-out): summary.txt (every figure and
# PASS/FAIL per stage) and one log per stage group. Any `skipped:` in a GPU test's output is a
# failure. Exit status 0 only when every stage passed. FIRST_CONTACT_REHEARSAL=1 (CI, on the
# emulated device): stages 0, 1, 2 and 6 with smaller workloads, see below.
set -uo pipefail
cd "$(dirname "$0")"
source ./libpaths.sh
export SIMCLR_REQUIRE_GPU=1 PYTHONUNBUFFERED=1
OUT="${OUT:-$PWD/first-contact-out}"
mkdir -p "$OUT"
BUDGET="${FIRST_CONTACT_BUDGET:-480}"
START=$(date +%s)
SUMMARY="$OUT/summary.txt"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
simclr=bin-tools/simclr
failed=0

left() { echo $((BUDGET - ($(date +%s) - START))); }
say() { echo "$*" | tee -a "$SUMMARY"; }
# Seconds a stage may use: its own box, cut to what is left (5 s kept for the summary).
# Never below 1: `timeout 0` would mean no limit at all.
box() { local l=$(($(left) - 5)); l=$(($1 < l ? $1 : l)); echo $((l < 1 ? 1 : l)); }
# Seconds until the epoch deadline $1, at most $2 (a stage's share for one executable).
until_() { local r=$(($1 - $(date +%s))); echo $((r < $2 ? r : $2)); }
# Runs a command with a time box, appending to a log; returns its status (124: timed out).
boxed() {
  local secs="$1" log="$2"; shift 2
  echo "# $(date -u +%T) [timeout ${secs}s] $*" >>"$log"
  timeout --kill-after=5 "$secs" "$@" >>"$log" 2>&1
}
verdict() { # stage name, status, log
  local s="$2" what="PASS"
  if ((s == 124 || s == 137)); then what="FAIL (timed out)"
  elif ((s != 0)); then what="FAIL (exit $s)"; fi
  if ((s == 0)) && grep -q "skipped:" "$3"; then what="FAIL (a GPU test printed skipped:)"; s=1; fi
  ((s != 0)) && failed=1
  say "stage $1: $what  [$(($(date +%s) - START)) s elapsed]"
  return $s
}
not_run() { say "stage $1: FAIL (not run: $2)"; failed=1; }
figure() { say "  $1: ${2:-not found in the log}"; }

: >"$SUMMARY"
say "# first contact $(date -u +%FT%TZ), budget ${BUDGET}s, logs in $OUT"
if command -v nvidia-smi >/dev/null; then
  say "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | head -n1)"
else
  say "gpu: nvidia-smi not found"
fi
say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
profile="$(cat build-profile.txt 2>/dev/null || echo unknown)"
say "bundle: bin-tools and bench built in the $profile profile"

# The workloads of stages 1, 2 and 6.
lib_tests=cuda_tests
r50=(--model r50_1x_sk1 --batch-size 256 --image-size 224 --warmup 2 --steps 5)
big_model=(--model r152_3x_sk1 --image-size 224)
# FIRST_CONTACT_REHEARSAL=1 (CI: scripts/gpu-rehearsal.sh): every stage's commands,
# flags and figure patterns run on the emulated device (SIMCLR_CUDA=emu, a --features cuda-emu
# build) at sizes it runs in seconds (r18_0.25x_sk1 at 32 px for stages 2 and 6, stage 6's
# profiled micro-batch capped at 16 rows), so that a mistake in them costs no GPU minute.
# Stages 3-5 need the GPU machine's own PyTorch and compute-sanitizer: named, not run.
rehearsal=0
if [[ ${FIRST_CONTACT_REHEARSAL:-0} == 1 ]]; then
  if [[ ${SIMCLR_CUDA:-} != emu ]]; then
    say "FIRST_CONTACT_REHEARSAL=1 needs SIMCLR_CUDA=emu (the emulated device of a --features cuda-emu build)"
    exit 2
  fi
  rehearsal=1
  say "REHEARSAL on the emulated device (FIRST_CONTACT_REHEARSAL=1): smaller workloads, no figures"
  lib_tests=tensor::cuda_tests
  r50=(--model r18_0.25x_sk1 --batch-size 2 --image-size 32 --warmup 1 --steps 1)
  big_model=(--model r18_0.25x_sk1 --image-size 32)
elif [[ $profile != release ]]; then
  say "  not release (SIMCLR_BUNDLE_PROFILE=$profile, a CI build): its timings are not figures, so this run fails"
  failed=1
fi
# A stage a rehearsal cannot run (it needs the GPU machine's tools): named, and not a failure.
not_rehearsed() { say "stage $1: not rehearsed (needs $2)"; }

# ---- stage 0: the library report and one tiny step; nothing else runs without them.
log0="$OUT/stage0-contact.log"
# Every library function the executables can look up, in this machine's libraries (a missing
# one would stop a run at its first call). Informational: it does not decide stage 0.
if [[ -f library-names.txt ]]; then
  boxed "$(box 8)" "$log0" python3 library-names.py library-names.txt
  figure "library names" "$(grep -o '^library names: .*' "$log0" | tail -n1 | cut -d' ' -f3-)"
  grep -E '^  (MISSING|.* not loadable)' "$log0" | head -n 20 | tee -a "$SUMMARY"
fi
boxed "$(box 14)" "$log0" "$simclr" info --device cuda; s=$?
if ((s == 0)); then
  boxed "$(box 16)" "$log0" "$simclr" bench --device cuda --model r18_0.25x_sk1 --batch-size 4 \
    --image-size 32 --precision bf16 --warmup 0 --steps 1 --no-plan; s=$?
fi
cat "$log0"
if ! verdict 0 $s "$log0"; then
  { echo "--- $log0"; cat "$log0"; echo "---"; } >>"$SUMMARY"
  say "stage 0 failed: the CUDA backend cannot run here; see the report above ($log0)."
  say "stages 1-6: not run (stage 0 failed)"
  exit 1
fi
figure "tiny step" "$(grep -o 'median [0-9.]* ms/step' "$log0" | head -n1)"

# ---- stage 1: every GPU parity suite.
log1="$OUT/stage1-parity.log"
if (($(box 110) < 20)); then not_run 1 "budget spent"; else
  s=0
  end=$(($(date +%s) + $(box 110)))
  # The ops' parity tests (src/**/cuda_tests.rs, in the library's test executable), then the
  # cuda_* suites (counts, graphs, NCCL, input).
  for exe in bin/simclr-lib bin/cuda_*; do
    t=$(until_ "$end" 110); ((t < 5)) && { echo "# budget spent before $exe" >>"$log1"; s=124; break; }
    args=(--test-threads=1)
    [[ $exe == bin/simclr-lib ]] && args+=("$lib_tests")
    boxed "$t" "$log1" "$exe" "${args[@]}" || s=$?
  done
  verdict 1 $s "$log1"
  figure "tests" "$(grep -E '^test result:' "$log1" | awk '{p+=$4; f+=$6} END {print p+0 " ok, " f+0 " failed"}')"
fi

# ---- stage 2: ours on the r50 step.
log2="$OUT/stage2-ours-r50.log"
if (($(box 75) < 30)); then not_run 2 "budget spent"; else
  boxed "$(box 75)" "$log2" "$simclr" bench --device cuda "${r50[@]}" --precision bf16 --profile
  verdict 2 $? "$log2"
  figure "ours step" "$(grep -o 'median [0-9.]* ms/step ([0-9.]* images/s)' "$log2")"
  figure "ours peak memory" "$(grep '^peak memory' "$log2")"
  figure "ours convolutions" "$(grep '^convolutions:' "$log2")"
  figure "ours encoder rate" "$(grep '^encoder FLOP rate' "$log2")"
  # What the deterministic rule passes over in one step, by cuDNN's own search times.
  figure "ours cuDNN choices" "$(grep '^cuDNN algorithms' "$log2")"
fi

# The same step for PyTorch (bench/pytorch/kernels.py reads our case records).
case_file=pytorch/r50-step.jsonl
torch_stage() { # stage, mode, box, log
  ((rehearsal)) && { not_rehearsed "$1" "PyTorch on a GPU"; return; }
  if (($(box "$3") < 20)); then not_run "$1" "budget spent"; return; fi
  boxed "$(box "$3")" "$4" "${SIMCLR_PYTHON:-python3}" pytorch/kernels.py --cases "$case_file" \
    --modes "$2" --device cuda --out "$TMP/torch-$2.json" --reps 3 --warmup 3 --min-time 0.3
  local s=$?
  # kernels.py records a failed case and goes on: its error line makes the stage fail.
  ((s == 0)) && grep -q "\[$2\]: [A-Za-z]*Error" "$4" && s=1
  verdict "$1" $s "$4"
  figure "PyTorch $2 step" "$(grep -o "\[$2\]: [0-9.]* ms" "$4")"
}

# ---- stage 3: PyTorch eager.
torch_stage 3 eager 60 "$OUT/stage3-torch-eager.log"

# ---- stage 4: compute-sanitizer over the parity tests of our own kernels (not the cuDNN-heavy
# ones of nn and conv2d, nor the largest shapes: batch_norm's 40,000 rows, moments' 2^24).
log4="$OUT/stage4-sanitizer.log"
san="$(command -v compute-sanitizer || true)"
[[ -z "$san" && -n "${CUDA_HOME:-}" && -x "$CUDA_HOME/bin/compute-sanitizer" ]] && san="$CUDA_HOME/bin/compute-sanitizer"
[[ -z "$san" ]] && san="$(ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -n1)"
if ((rehearsal)); then not_rehearsed 4 "compute-sanitizer and a GPU"
elif [[ -z "$san" ]]; then not_run 4 "compute-sanitizer not found (PATH, \$CUDA_HOME/bin, /usr/local/cuda*/bin)"
elif (($(box 80) < 20)); then not_run 4 "budget spent"; else
  s=0
  end=$(($(date +%s) + $(box 80)))
  for tool in memcheck racecheck; do
    exe=bin/simclr-lib
    [[ -x "$exe" ]] || { echo "# missing $exe" >>"$log4"; s=1; break; }
    t=$(until_ "$end" $([[ $tool == memcheck ]] && echo 160 || echo 100))
    ((t < 5)) && { echo "# budget spent before $tool" >>"$log4"; s=124; break; }
    boxed "$t" "$log4" "$san" --tool "$tool" --error-exitcode 99 "$exe" --test-threads=1 \
      cuda_tests --skip nn:: --skip conv2d:: --skip batch_norm:: --skip moments:: \
      --skip augment:: || s=$?
  done
  verdict 4 $s "$log4"
  figure "sanitizer errors" "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log4" | sort | uniq -c | tr '\n' ';')"
fi

# ---- stage 5: torch.compile.
torch_stage 5 compile 90 "$OUT/stage5-torch-compile.log"

# ---- stage 6: r152_3x_sk1 at an effective batch of 4096.
log6="$OUT/stage6-r152.log"
if (($(box 70) < 25)); then not_run 6 "budget spent"; else
  end=$(($(date +%s) + $(box 70)))
  big=(bench --device cuda "${big_model[@]}" --recompute --precision bf16)
  # The plan for 4096 images (it stops before the first step when they do not fit at once).
  boxed "$(until_ "$end" 25)" "$log6" "$simclr" "${big[@]}" --batch-size 4096 --steps 1 --warmup 0
  # The plan names the micro-batch in images (two views, two rows, each).
  fits="$(sed -n 's/.*--micro-batch \([0-9]*\) (images).*/\1/p' "$log6" | head -n1)"
  rows=$(( ${fits:-64} * 2 * 9 / 10 / 32 * 32 )); ((rows < 32)) && rows=32
  ((rehearsal && rows > 16)) && rows=16
  echo "# micro-batch: the plan says ${fits:-nothing} images fit; profiling one step of $rows rows" >>"$log6"
  boxed "$(until_ "$end" 60)" "$log6" "$simclr" "${big[@]}" --batch-size $((rows / 2)) --warmup 1 --steps 1 --profile
  s=$?
  [[ -z "$fits" ]] && { echo "# the plan printed no micro-batch" >>"$log6"; s=1; }
  verdict 6 $s "$log6"
  figure "r152 plan" "$(grep -m1 -E 'memory plan|does not fit|--micro-batch' "$log6")"
  figure "r152 micro-batch step" "$(grep -o 'median [0-9.]* ms/step ([0-9.]* images/s)' "$log6")"
  figure "r152 convolutions" "$(grep '^convolutions:' "$log6")"
fi

if ((rehearsal)); then
  say "rehearsal: $(($(date +%s) - START)) s of ${BUDGET} s; $( ((failed)) && echo "FAILED" || echo "every rehearsed stage PASS (0, 1, 2, 6)")"
else
  say "total: $(($(date +%s) - START)) s of ${BUDGET} s; $( ((failed)) && echo "FAILED" || echo "every stage PASS")"
fi
exit $failed
