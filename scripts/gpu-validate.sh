#!/usr/bin/env bash
# One stage of the GPU validation, run from the bundle (scripts/build-gpu-bundle.sh) on the GPU
# machine; every stage fits in one 10-minute device command and writes its log into $OUT:
#   first-contact  every check below in 8 minutes, stopping at once if the GPU cannot be used
#   tests      every bundled GPU test (parity with the CPU reference)
#   memcheck   the parity suites under compute-sanitizer
#   r50        pretraining step of r50_1x_sk1, batch 256, 224 px, bf16, with --profile
#   r152       r152_3x_sk1 at an effective batch of 4096 (224 px), micro-batched, 4 steps
#   train      a short pretraining run of r50_1x_sk1 on the synthetic data at 224 px
#   input      the input pipeline on a generated folder of 2,048 JPEGs at 224 px: the loader on
#              every core, the GPU augmentation, the r50_1x_sk1 step on random data and training
#              on the folder end to end, against 95% of the random-data step (issue 18)
#   conv-algorithms  the r50 step of `r50`, ours and PyTorch eager's (pytorch/r50-step.jsonl),
#              under deterministic cuDNN algorithms, then with nondeterministic ones allowed
#              (ours: --conv-algorithms; PyTorch: cudnn.deterministic, False by default, which
#              first-contact's comparison uses): the margin, and each side's ratio under one rule
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT"
# One command for a first contact (8 minutes, every stage; see first-contact.sh).
[[ "${1:-}" == first-contact ]] && exec bash ./first-contact.sh
# Every nvidia/*/lib (nvidia/cu13/lib included) of PyTorch's Python; a skipped GPU test fails.
source ./libpaths.sh
export SIMCLR_REQUIRE_GPU=1
simclr=bin-tools/simclr
stage="${1:?usage: validate.sh first-contact|tests|memcheck|r50|r152|train|input|conv-algorithms}"
# The stages' workloads. VALIDATE_REHEARSAL=1 (CI: scripts/gpu-rehearsal.sh, SIMCLR_CUDA=emu):
# every stage but memcheck (compute-sanitizer) runs its own commands on the emulated device, with
# the workloads made small below; PyTorch's half of conv-algorithms is named, not run.
rehearsal=0
step_work=(--model r50_1x_sk1 --batch-size 256 --image-size 224 --warmup 3 --steps 10)
# r152: the plan for 4096 images at once, then steps of big_batch images micro-batched.
big_model=(--model r152_3x_sk1 --image-size 224)
big_batch=4096 big_steps=(--warmup 1 --steps 3) big_micro_cap=4096
input_work=(--make-folder 2048 --model r50_1x_sk1 --batch-size 256 --image-size 224 --warmup 2 --steps 6)
train_work=(--model r50_1x_sk1 --image-size 224 --synthetic-train 8192 --synthetic-test 512 --batch-size 256)
tests_filter=()
if [[ ${VALIDATE_REHEARSAL:-0} == 1 ]]; then
  [[ ${SIMCLR_CUDA:-} == emu && $stage != memcheck ]] || {
    echo "VALIDATE_REHEARSAL=1 rehearses every stage but memcheck, with SIMCLR_CUDA=emu" >&2
    exit 2
  }
  rehearsal=1
  step_work=(--model r18_0.25x_sk1 --batch-size 2 --image-size 32 --warmup 1 --steps 1)
  big_model=(--model r18_0.25x_sk1 --image-size 32)
  big_batch=8 big_steps=(--warmup 0 --steps 1) big_micro_cap=4
  input_work=(--make-folder 16 --model r18_0.25x_sk1 --batch-size 4 --image-size 32 --warmup 1 --steps 2)
  train_work=(--model r18_0.25x_sk1 --image-size 32 --synthetic-train 32 --synthetic-test 16 --batch-size 16)
  tests_filter=('' cuda_conv_algorithms)
fi
# A bundle CI built in the test profile checks correctness (tests, memcheck), not speed.
profile="$(cat build-profile.txt 2>/dev/null || echo unknown)"
if ((!rehearsal)) && [[ $profile != release && $stage != tests && $stage != memcheck ]]; then
  echo "validate.sh $stage: bin-tools/simclr was built in the '$profile' profile (a CI build), not release: its timings are not figures; build the bundle with scripts/build-gpu-bundle.sh" >&2
  exit 2
fi
log="$OUT/$stage.log"
{
  echo "# $(date -u +%FT%TZ) stage $stage"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  case "$stage" in
    tests) bash run.sh "${tests_filter[@]}" ;;
    memcheck) bash run.sh memcheck simclr-lib -- cuda_tests ;;
    r50) "$simclr" bench --device cuda "${step_work[@]}" --profile ;;
    r152)
      # Let the memory plan pick the micro-batch: ask for none, read the one it says fits, and
      # keep 10% back for what the two probes cannot see (MICRO overrides).
      big=(bench --device cuda "${big_model[@]}" --recompute)
      micro="${MICRO:-}"
      if [[ -z "$micro" ]]; then
        plan="$("$simclr" "${big[@]}" --batch-size 4096 --steps 1 --warmup 0 2>&1 | tee /dev/stderr)"
        fits="$(sed -n 's/.*--micro-batch \([0-9]*\) (images).*/\1/p' <<<"$plan" | head -n1)"
        [[ -n "$fits" ]] || { echo "# the plan for 4096 images named no micro-batch"; exit 1; }
        micro=$(( fits * 9 / 10 / 16 * 16 )); ((micro < 16)) && micro=16
        ((micro > big_micro_cap)) && micro=$big_micro_cap
        echo "# micro-batch: plan says $fits fits, using $micro"
      fi
      "$simclr" "${big[@]}" --batch-size "$big_batch" --micro-batch "$micro" "${big_steps[@]}" --profile ;;
    train) "$simclr" pretrain --device cuda "${train_work[@]}" --epochs 1 --out "$OUT/train-run" ;;
    input) "$simclr" bench --task input --device cuda --data-dir "${INPUT_DIR:-/tmp/simclr-input}" \
             --with-step --precision bf16 "${input_work[@]}" ;;
    conv-algorithms)
      rc=0
      for policy in deterministic fastest; do
        "$simclr" bench --device cuda "${step_work[@]}" --precision bf16 \
          --conv-algorithms "$policy" || rc=$?
        if ((rehearsal)); then
          echo "PyTorch eager ($policy): not rehearsed (needs PyTorch on a GPU)"
          continue
        fi
        torch_rule=(); [[ $policy == deterministic ]] && torch_rule=(--cudnn-deterministic)
        "${SIMCLR_PYTHON:-python3}" pytorch/kernels.py --cases pytorch/r50-step.jsonl \
          --modes eager --device cuda --reps 3 --warmup 3 --min-time 0.3 "${torch_rule[@]}" \
          --out "$OUT/torch-eager-$policy.json" || rc=$?
      done
      (exit $rc) ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
  rc=$?
  echo "# exit $rc"
  # The stage's status is the script's (pipefail: the pipeline's is this group's, not tee's).
  exit $rc
} 2>&1 | tee "$log"
