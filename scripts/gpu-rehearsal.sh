#!/usr/bin/env bash
# The GPU validation rehearsed on the emulated device (CI, after the emulated suites), from a
# folder laid out as the unpacked bundle with the --features cuda-emu build's trainer and test
# executables, SIMCLR_CUDA=emu and smaller workloads:
# - first-contact.sh (scripts/gpu-first-contact.sh) with FIRST_CONTACT_REHEARSAL=1: stages 0, 1,
#   2 and 6 must pass and each of their figures must be found in its log; stages 3-5 need the
#   GPU machine's PyTorch and compute-sanitizer;
# - validate.sh (scripts/gpu-validate.sh) with VALIDATE_REHEARSAL=1: every stage but memcheck
#   (input: issue 18's figures on a GPU; train, r50, r152, conv-algorithms with PyTorch's half
#   named, tests through run.sh) must exit 0 and print the lines their figures are read from.
# Needs nvcc as for any cuda build ($NVCC); reuses the `cargo test --features cuda-emu` build.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
# fail MESSAGE LOG...: the end of each log, then the message; exits 1.
fail() {
  local f
  for f in "${@:2}"; do echo "--- $f" >&2; tail -n 40 "$f" >&2; done
  echo "$1" >&2
  exit 1
}
json="$dir/build.json"
# The trainer, the library's tests and a few quick cuda_* suites (stage 1's loop over them;
# CI runs every suite on the emulated device already).
suites=(cuda_op_counts cuda_conv_algorithms cuda_nvjpeg cuda_gpu_input)
cargo test --features cuda-emu --no-run --lib "${suites[@]/#/--test=}" --message-format=json >"$json"
mkdir -p "$dir/bin" "$dir/bin-tools"
while IFS=$'\t' read -r kind name test exe; do
  if [[ $kind == bin && $name == simclr ]] && ((!test)); then
    ln -s "$exe" "$dir/bin-tools/simclr"
  elif ((test)) && [[ $kind == lib ]]; then
    ln -s "$exe" "$dir/bin/simclr-lib"
  elif ((test)) && [[ " ${suites[*]} " == *" $name "* ]]; then
    ln -s "$exe" "$dir/bin/$name"
  fi
done < <(python3 scripts/cargo-executables.py "$json")
for f in bin-tools/simclr bin/simclr-lib "${suites[@]/#/bin/}"; do
  [[ -e "$dir/$f" ]] || fail "GPU rehearsal: the build has no $f"
done
cp scripts/gpu-first-contact.sh "$dir/first-contact.sh"
cp scripts/gpu-libpaths.sh "$dir/libpaths.sh"
echo test >"$dir/build-profile.txt"
# The tests read their fixtures relative to the package root (their working directory there).
mkdir -p "$dir/tests" && ln -s "$PWD/tests/fixtures" "$dir/tests/fixtures"

out="$dir/out"
status=0
# 1 GiB of emulated device memory: stage 6's plan for 4096 images (r18_0.25x_sk1 at 32 px in a
# rehearsal) then does not fit at once and names the micro-batch that does, as r152_3x_sk1's
# must on an H200.
OUT="$out" SIMCLR_CUDA=emu SIMCLR_EMU_MEMORY_GIB=1 FIRST_CONTACT_REHEARSAL=1 \
  bash "$dir/first-contact.sh" || status=$?
summary="$out/summary.txt"
first_contact_fail() { fail "first-contact rehearsal: $1" "$out"/*.log; }
((status == 0)) || first_contact_fail "first-contact.sh exited $status"
for stage in 0 1 2 6; do
  grep -q "^stage $stage: PASS" "$summary" || first_contact_fail "stage $stage did not pass"
done
for stage in 3 4 5; do
  grep -q "^stage $stage: not rehearsed" "$summary" || first_contact_fail "stage $stage is not named as not rehearsed"
done
! grep -q "not found in the log" "$summary" || first_contact_fail "a figure's pattern matched nothing in its log"
grep -q "every rehearsed stage PASS" "$summary" || first_contact_fail "no closing line"
(($(ls "$out" | wc -l) <= 8)) || first_contact_fail "more than 8 files in the output folder"
echo "first-contact rehearsal passed in $SECONDS s (its summary is above)"

cp scripts/gpu-validate.sh "$dir/validate.sh"
cp scripts/gpu-run-tests.sh "$dir/run.sh"
# validate.sh STAGE, rehearsed: it must exit 0 and its log hold each of the given lines' starts.
# EMU_GIB: the emulated device's memory (1 GiB for r152, whose plan for 4096 images must then
# name a micro-batch, as on an H200).
validate() {
  local stage=$1 log="$dir/validate-out/$1.log" line start=$SECONDS
  shift
  OUT="$dir/validate-out" INPUT_DIR="$dir/input-folder" SIMCLR_CUDA=emu VALIDATE_REHEARSAL=1 \
    SIMCLR_EMU_MEMORY_GIB="${EMU_GIB:-16}" bash "$dir/validate.sh" "$stage" >/dev/null 2>&1 ||
    fail "validate.sh $stage rehearsal: exit status not 0" "$log"
  for line in "$@"; do
    grep -q "^$line" "$log" || fail "validate.sh $stage rehearsal: no line starting \"$line\"" "$log"
  done
  echo "validate.sh $stage rehearsal passed ($((SECONDS - start)) s)"
}
validate input "GPU two-view augmentation on cuda:0" "GPU decode (nvJPEG, " \
  "pretrain step of r18_0.25x_sk1 at batch 4" "end to end on the folder"
validate train "pretrain epoch 1/1: loss"
step="pretrain step of r18_0.25x_sk1 at batch 2"
validate r50 "$step" "peak memory" "convolutions:" "encoder FLOP rate" "cuDNN algorithms"
EMU_GIB=1 validate r152 "# micro-batch: plan says" "pretrain step of r18_0.25x_sk1 at batch 8" \
  "convolutions:"
validate conv-algorithms "cuDNN algorithms (--conv-algorithms deterministic)" \
  "cuDNN algorithms (--conv-algorithms fastest)" "PyTorch eager (fastest): not rehearsed"
validate tests "=== cuda_conv_algorithms" "test result: ok"
