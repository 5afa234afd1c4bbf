#!/usr/bin/env bash
# Proof that the emulated device catches real bugs (issue 12, item 7): for each planted fault,
# build with --features cuda-emu against patched sources, run the GPU parity test that covers
# the faulty code on the emulated device, and check that it FAILS. Prints a table
# fault -> caught by (the failure's message); exits 0 only if every fault was caught.
#
# Kernel faults patch a copy of kernels/ that build.rs compiles for the emulated build only
# (SIMCLR_EMU_KERNELS_DIR), so nvcc's fatbins and the Rust sources stay as they are. A launcher
# fault patches one Rust file, which is put back after its test.
# - By default every fault builds in one copy of the repository ($WORK/repo, made once) into the
#   same target dir: the copy's paths never change, so each fault is an incremental rebuild of
#   one crate (a few seconds: the test profile has no crate-local ThinLTO, Cargo.toml). The
#   first fault builds the whole crate (about 4 minutes on 2 cores): the copy's path is not the
#   checkout's.
# - --in-place (CI, on a clean clone): launcher faults patch the checkout itself, so the faults
#   reuse the checkout's own `cargo test --features cuda-emu` build (made with
#   CARGO_INCREMENTAL=1) and no first build is needed. Each patched file's original is kept in
#   $WORK/originals and put back after its test, on exit, on interrupt, and at the start of the
#   next run if a killed run left one planted. It is written back anew, newer than the faulty
#   build: so also newer than the checkout's other builds, which cargo then builds again.
# Needs nvcc as for any cuda build ($NVCC).
# Usage: bash scripts/emu-planted-faults.sh [--in-place] [filter]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${TMPDIR:-/tmp}/simclr-planted-faults
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
IN_PLACE=0
if [[ ${1:-} == --in-place ]]; then
  IN_PLACE=1
  shift
fi
FILTER=${1:-}
ORIGINALS=$WORK/originals
mkdir -p "$WORK"

# Puts every planted launcher file back from its kept original.
put_back() {
  local orig
  [[ -d $ORIGINALS ]] || return 0
  while IFS= read -r -d '' orig; do
    # Written anew (not cp -p), so the file is newer than the faulty build.
    cat "$orig" >"$REPO/${orig#"$ORIGINALS"/}" && rm -f "$orig"
  done < <(find "$ORIGINALS" -type f -print0)
}

if ((IN_PLACE)); then
  REPO=$ROOT
  left=$(find "$ORIGINALS" -type f 2>/dev/null | wc -l)
  if ((left > 0)); then
    echo "putting back $left file(s) a killed run left planted in $ROOT" >&2
    put_back
  fi
else
  REPO=$WORK/repo
  rm -rf "$REPO" "$ORIGINALS" && mkdir -p "$REPO"
  tar -C "$ROOT" --exclude=./target --exclude=./.git --exclude=./gpu-bundle -cf - . | tar -C "$REPO" -xf -
fi
trap put_back EXIT
trap 'put_back; exit 130' INT TERM HUP
RESULTS=()
ALL_CAUGHT=1

# plant FILE OLD NEW: replaces the first occurrence of OLD (exact text) by NEW, or fails.
plant() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2].encode().decode("unicode_escape"), sys.argv[3].encode().decode("unicode_escape")
s = open(path).read()
if old not in s:
    sys.exit(f"cannot plant the fault: {old!r} is not in {path}")
open(path, "w").write(s.replace(old, new, 1))
PY
}

# run NAME KIND(kernel|rust) FILE OLD NEW TEST FILTER [MODULES]
# MODULES (a fault in a shared header): the kernel modules that get the planted copy, the ones
# the test runs (SIMCLR_EMU_KERNELS_FOR, build/emu.rs); every other module compiles from
# kernels/ and comes from the object cache, instead of all of them being compiled again.
run() {
  local name=$1 kind=$2 file=$3 old=$4 new=$5 test=$6 tfilter=$7 modules=${8:-}
  [[ -n "$FILTER" && "$name" != *"$FILTER"* ]] && return
  [[ $kind == "$PASS" ]] || return
  local log="$WORK/$name.log" dir env=() target=(--test "$test")
  # `lib`: the parity tests beside the ops (src/**/cuda_tests.rs), in the library's tests.
  [[ $test == lib ]] && target=(--lib)
  echo "== $name: $file ($test $tfilter)" >&2
  if [[ $kind == kernel ]]; then
    dir="$WORK/kernels-$name"
    rm -rf "$dir" && cp -r "$ROOT/kernels" "$dir"
    plant "$dir/$file" "$old" "$new" || { RESULTS+=("$name|0|NOT PLANTED"); ALL_CAUGHT=0; return; }
    env=(SIMCLR_EMU_KERNELS_DIR="$dir")
    [[ -n $modules ]] && env+=(SIMCLR_EMU_KERNELS_FOR="$modules")
  else
    mkdir -p "$(dirname "$ORIGINALS/$file")"
    cp "$REPO/$file" "$ORIGINALS/$file"
    plant "$REPO/$file" "$old" "$new" || { put_back; RESULTS+=("$name|0|NOT PLANTED"); ALL_CAUGHT=0; return; }
  fi
  local rc attempt crate began=$SECONDS
  for attempt in 1 2; do
    # A cuDNN algorithm cache of the fault's own: a choice cached by a run without the fault
    # would hide a fault in the choice.
    (cd "$REPO" && env "${env[@]}" SIMCLR_CUDA=emu CARGO_TARGET_DIR="$TARGET" \
      SIMCLR_CACHE_DIR="$WORK/cache-$name" \
      cargo test --features cuda-emu "${target[@]}" -- "$tfilter" >"$log" 2>&1)
    rc=$?
    # rustc's incremental state can go stale and fail the link with a missing `*.llvm.*` symbol
    # (rust-lang/rust#81280, open): that crate's incremental state is dropped and it is built
    # once more, whole.
    ((attempt == 1)) && grep -q 'undefined .*symbol: .*\.llvm\.[0-9]' "$log" || break
    crate=$(grep -m1 -o 'could not compile `[A-Za-z0-9_-]*`' "$log" | tr -d '`' | sed 's/.* //')
    echo "   $crate failed to link from stale incremental state (rust-lang/rust#81280): building it whole" >&2
    rm -rf "$TARGET"/debug/incremental/"${crate//-/_}"-*
  done
  put_back
  local took=$((SECONDS - began))
  if grep -q '^error\(\[E[0-9]*\]\)\?: could not compile\|^error: failed to run custom build' "$log"; then
    RESULTS+=("$name|$took|BUILD FAILED (see $log)")
    ALL_CAUGHT=0
  elif [[ $rc -ne 0 ]]; then
    # The first line saying what went wrong: the emulator's message, else the assertion.
    local msg
    msg=$(grep -m1 -o 'kernel [a-z_0-9]* block.*' "$log" | sed 's/")*$//' | cut -c1-200)
    [[ -z "$msg" ]] && msg=$(grep -m1 -A1 'panicked at' "$log" | tail -n1 | cut -c1-200)
    RESULTS+=("$name|$took|$msg")
  else
    RESULTS+=("$name|$took|NOT CAUGHT (the test passed)")
    ALL_CAUGHT=0
  fi
}

# The faults, run in two passes: every kernel fault, then the launcher faults back to back, so
# that putting one launcher file back and planting the next cost one incremental build, not two.
faults() {
  run ntxent-missing-syncthreads kernel ntxent.cu \
    '    __syncthreads();\n#pragma unroll 8' '#pragma unroll 8' lib ntxent::cuda_tests::ntxent_parity
  run column-sum-missing-syncthreads kernel common.cuh \
    '  s[threadIdx.y][threadIdx.x] = v;\n  __syncthreads();' '  s[threadIdx.y][threadIdx.x] = v;' \
    lib matmul::cuda_tests::matmul_parity matmul
  # Races in shared memory that rarely change a result here (the emulator's threads run from
  # barrier to barrier), caught by its shared-memory checks (emu/shared.cpp) every time.
  run block-sum-reuses-its-slots-without-a-barrier kernel common.cuh \
    '  __syncthreads();  // s may still be read by a previous call' '' \
    lib optim::cuda_tests::lars_multi_tensor_matches_cpu multi_tensor
  run blur-reads-its-weights-before-the-barrier kernel augment.cu \
    '/ sum);\n    __syncthreads();' '/ sum);' lib augment::cuda_tests::gpu_augmentation_matches
  run sum-all-reads-the-last-flag-before-the-barrier kernel elementwise.cu \
    'gridDim.x - 1;\n  }\n  __syncthreads();' 'gridDim.x - 1;\n  }' \
    lib elementwise::cuda_tests::elementwise_parity
  run column-sum-writes-a-row-past-the-end kernel common.cuh \
    '  s[threadIdx.y][threadIdx.x] = v;' '  s[threadIdx.y + 1][threadIdx.x] = v;' \
    lib matmul::cuda_tests::matmul_parity matmul
  # The blur's vertical pass reading the horizontal pass's image in device memory (a per-block
  # scratch) with no barrier between the passes. In a fresh scratch the first thread to run
  # reads its neighbours' unwritten pixels (initcheck); in one an earlier launch wrote, a thread
  # reading what another stored in the same interval fails as a race between a block's threads
  # (emu/memory.cpp, block_race; tests/emu_runtime.rs).
  run augment-blur-passes-without-a-barrier kernel augment.cu \
    '    blur_pass(img, tmp, bw, ksize, size, true);\n    __syncthreads();' \
    '    blur_pass(img, tmp, bw, ksize, size, true);' lib augment::cuda_tests::gpu_augmentation_matches
  run bn-fold-missing-syncthreads kernel vec.cuh \
    '    tmp[t] = s;\n  }\n  __syncthreads();' '    tmp[t] = s;\n  }' \
    lib batch_norm::cuda_tests::batch_norm_parity batch_norm
  run bn-fold-drops-part-0 kernel vec.cuh 'for (int q = 0; q < parts; ++q)' \
    'for (int q = 1; q < parts; ++q)' lib batch_norm::cuda_tests::batch_norm_parity batch_norm
  run bn-finish-drops-the-last-row-chunk kernel vec.cuh 'fold(n, g, get, tmp, res);' \
    'fold(n, g - 1, get, tmp, res);' lib batch_norm::cuda_tests::batch_norm_parity batch_norm
  run bn-stats-shift-differs-per-block kernel batch_norm.cu 'load_w<W>(x + p.ch, vec, k);' \
    'load_w<W>(x + (i64)blockIdx.y * c + p.ch, vec, k);' lib batch_norm::cuda_tests::batch_norm_parity
  run bn-reduce-launch-one-column rust src/cuda/groups.rs 'grid: (col_blocks(c), g.max(1), 1),' \
    'grid: (1, g.max(1), 1),' lib batch_norm::cuda_tests::batch_norm_parity
  run bn-relu-sums-mask-drops-beta kernel batch_norm.cu 'bn_pre(v[j], mu[j], k[j], b[j]) > 0.f))' \
    'bn_pre(v[j], mu[j], k[j], 0.f) > 0.f))' lib bn_act::cuda_tests::bn_act_parity
  run bn-relu-backward-mask-drops-beta kernel bn_act.cu 'b[j] = pre ? beta[ch] : 0.f;' \
    'b[j] = 0.f;' lib bn_act::cuda_tests::bn_act_parity
  run avg-pool-backward-spreads-channel-0 kernel pool.cu 'g[j] += d[j] * inv;' \
    'g[j] += d[0] * inv;' lib pool::cuda_tests::pool_parity
  run avg-pool-forward-drops-the-last-window-row kernel pool.cu \
    'acc[W] = {};\n    for (int ih = h0; ih < h1; ++ih)' \
    'acc[W] = {};\n    for (int ih = h0; ih < h1 - 1; ++ih)' \
    lib pool::cuda_tests::pool_parity
  run grid-loop-off-by-one kernel common.cuh 'i < (n); i +=' 'i <= (n); i +=' \
    lib pool::cuda_tests::pool_parity pool
  run warp-sum-half-mask kernel common.cuh \
    'v += __shfl_xor_sync(0xffffffffu, v, o)' 'v += __shfl_xor_sync(0x0000ffffu, v, o)' \
    lib ntxent::cuda_tests::ntxent_parity ntxent
  run cast-writes-past-the-end kernel cast.cu 'store_w<W>(y + i, vec, p)' \
    'store_w<W>(y + i + 8, vec, p)' lib tensor::cuda_tests::transfers_and_casts_round_trip
  run flat-chunks-drops-the-last-tail-element kernel vec.cuh 'if (t < n - body)' \
    'if (t + 1 < n - body)' lib elementwise::cuda_tests::elementwise_parity elementwise
  run load-w-repeats-the-first-16-bytes kernel vec.cuh \
    'raw[k] = reinterpret_cast<const v16*>(p)[k]' 'raw[k] = reinterpret_cast<const v16*>(p)[0]' \
    lib elementwise::cuda_tests::elementwise_parity elementwise
  run sum-all-drops-the-first-block kernel elementwise.cu \
    'for (unsigned b = threadIdx.x; b < gridDim.x' 'for (unsigned b = threadIdx.x + 1; b < gridDim.x' \
    lib elementwise::cuda_tests::elementwise_parity
  run sum-all-publishes-without-a-fence kernel elementwise.cu \
    '    partial[blockIdx.x] = v;\n    __threadfence();' '    partial[blockIdx.x] = v;' \
    lib elementwise::cuda_tests::elementwise_parity
  run bn-partials-without-a-fence kernel vec.cuh \
    '  __threadfence();  // the partials are visible before the ticket is taken' '' \
    lib batch_norm::cuda_tests::batch_norm_parity batch_norm
  run sk-pool-block-sum-drops-lane-0 kernel image_groups.cuh 'for (int l = 0; l < s.lanes; ++l)' \
    'for (int l = 1; l < s.lanes; ++l)' lib sk::cuda_tests::sk_kernels_match_the_cpu sk
  run sk-mix-swaps-the-weights kernel sk.cu 'a[j] = a0[j] * a[j] + (1.f - a0[j]) * b[j]' \
    'a[j] = (1.f - a0[j]) * a[j] + a0[j] * b[j]' lib sk::cuda_tests::sk_kernels_match_the_cpu
  run sk-dz1-wrong-sign kernel sk.cu 'from_f<T>(-d)' 'from_f<T>(d)' \
    lib sk::cuda_tests::sk_kernels_match_the_cpu
  run sk-du-drops-the-pool-term kernel sk.cu 'b[j] = dy ? g[j] * (1.f - a0[j]) + d[j] : d[j]' \
    'b[j] = dy ? g[j] * (1.f - a0[j]) : d[j]' lib sk::cuda_tests::sk_kernels_match_the_cpu
  run sk-launch-drops-pixel-chunks rust src/cuda/image_groups.rs 'let blocks = n * chunks * gx;' \
    'let blocks = n * gx;' lib sk::cuda_tests::sk_kernels_match_the_cpu
  run sk-linked-pool-drops-the-mix-term rust src/ops/sk/tape.rs \
    'let mix = pending.borrow_mut().take();' \
    'let mix = pending.borrow_mut().take().filter(|_| false);' cuda_op_counts linked_pair
  run global-pool-backward-misses-a-lane kernel pool.cu \
    'for (int p = s.first; p < hw; p += s.stride) store_w' \
    'for (int p = s.first + 1; p < hw; p += s.stride) store_w' lib pool::cuda_tests::pool_parity
  run channels-copy-drops-the-offset kernel channels.cu \
    'store_w<W>(dst + r * dst_c + dst_off + g.ch, vec, v)' 'store_w<W>(dst + r * dst_c + g.ch, vec, v)' \
    lib channels::cuda_tests::channels_parity
  run avg-pool-leading-pad-of-the-wrong-axis kernel pool.cu \
    'window(oh, s, ph, k, h, h0, h1);' 'window(oh, s, pw, k, h, h0, h1);' \
    lib pool::cuda_tests::pool_parity
  run max-pool-forward-skips-the-first-cell kernel pool.cu 'if (first || a[j] > best[j])' \
    'if (a[j] > best[j])' lib pool::cuda_tests::pool_parity
  run max-pool-backward-ties-share-the-gradient kernel pool.cu \
    'if (a[j] == m[j]) pending &= ~(1u << j);' 'if (a[j] != a[j]) pending = 0;' \
    lib pool::cuda_tests::pool_parity
  run pool-launch-swaps-ho-wo rust src/ops/pool/cuda.rs \
    'k::max_pool2d_forward(&gpu, cfg, xp, yp, n, h, w, c, kk, st, ph, pw, ho, wo)' \
    'k::max_pool2d_forward(&gpu, cfg, xp, yp, n, h, w, c, kk, st, ph, pw, wo, ho)' \
    lib pool::cuda_tests::pool_parity
  run moments-combine-skips-count-high-half kernel moments.cu \
    '(double)p[2 * c + 1] * 16777216.0' '0.0' lib moments::cuda_tests::moments_pack_combine
  run avg-pool-tiles-skip-uncovered-cells kernel pool.cu \
    'int he = oh == ho - 1 ? h : h1, we = ow == wo - 1 ? w : w1;' 'int he = h1, we = w1;' \
    lib pool::cuda_tests::pool_parity
  run gpu-decode-writes-every-jpeg-at-the-first-offset rust src/data/gpu_input.rs \
    'dst: src + e.offset as u64,' 'dst: src,' \
    cuda_gpu_decode gpu_decoded_views_match
  # A JPEG whose markers say RGB sent to nvJPEG, which converts three components from YCbCr
  # (the emulated one always does).
  run gpu-decodes-rgb-coded-jpegs rust src/data/stream/encoded.rs \
    '    if colour.hints_rgb() {' '    if false && colour.hints_rgb() {' \
    cuda_gpu_decode gpu_decoded_views_match
  # A pinned source buffer refilled before the copy out of it was waited for: on a GPU the
  # copy may read the next batch's bytes (the emulated device checks pinned memory in flight).
  # Caught by the steady-state test, whose one input refills its slots step after step; the
  # loader test's two batches per input missed it once in CI (whether it refills depends on
  # the sizes its fresh seed draws).
  run gpu-input-refills-a-pinned-buffer-in-flight rust src/data/gpu_input.rs \
    '        slot.wait_copied()?;' '        let _ = &slot;' \
    cuda_input_counts gpu_input_step_uploads_once
  run pinned-uploader-refills-a-buffer-in-flight rust src/cuda/staging.rs \
    '        slot.wait_free()?;' '        let _ = &slot;' \
    cuda_step_counts steady_state_step_uploads_once
  # The bf16 convolutions take the fastest algorithm even when it is nondeterministic (the
  # emulated cuDNN ranks those fastest and varies their last bits): a replayed step then
  # differs from the eager one.
  run conv-takes-nondeterministic-algorithms-in-bf16 rust src/cuda/conv_algo.rs \
    'c.deterministic || algorithms' 'strict && c.deterministic || algorithms' \
    cuda_graph_step replayed_step_matches_eager
  # --conv-algorithms fastest is read but never reaches the choice: every run stays
  # deterministic, and the flag measures nothing.
  run conv-fastest-keeps-to-deterministic-algorithms rust src/cuda/conv_algo.rs \
    'c.deterministic || algorithms == ConvAlgorithms::Fastest' \
    'c.deterministic || algorithms != algorithms' \
    cuda_conv_algorithms fastest_may_vary
  run lars-bind-takes-the-next-gradient kernel multi_tensor.cu 'p = j == k ? g[j] : p;' \
    'p = j == k + 1 ? g[j] : p;' lib optim::cuda_tests::lars_resident_table_matches_cpu_over_steps
  run augment-hue-swaps-two-sectors kernel augment.cu 'case 1: r2 = q, g2 = v, b2 = pp;' \
    'case 1: r2 = v, g2 = q, b2 = pp;' lib augment::cuda_tests::gpu_augmentation_matches
  run lr-schedule-never-advances kernel multi_tensor.cu \
    '*step = set ? value : *step + 1;' '*step = set ? value : *step;' \
    cuda_graph_step replayed_step_matches_eager
  # A 16-byte load at an 8-byte boundary: a fault on a GPU. Without the alignment check the
  # emulated build dies of SIGSEGV (GCC moves the 16-byte type with an aligned SSE instruction)
  # without naming the kernel; with it, the launch fails naming kernel, thread, type and line.
  run narrow-vectorises-an-unaligned-start rust src/ops/channels/cuda.rs \
    'let w8 = [c, start, len].iter().all(|v| v % 8 == 0);' \
    'let w8 = [c, len].iter().all(|v| v % 8 == 0);' lib channels::cuda_tests::channels_parity
  # A block larger than the kernel's __launch_bounds__: a GPU refuses the launch, and so must
  # the emulator (its threads would otherwise run past the 16 x 16 tile the kernel assumes).
  run ntxent-launch-exceeds-its-bounds rust src/ops/ntxent/cuda.rs 'const THREADS: u32 = 256;' \
    'const THREADS: u32 = 512;' lib ntxent::cuda_tests::ntxent_parity
  # Orders missing between two streams: right values on the emulated device (work runs in
  # program order), a race on a GPU; caught by the stream-order check.
  run gpu-input-kernel-skips-the-copy-wait rust src/data/gpu_input.rs \
    'event::stream_wait(compute, slot.copied).call("cuStreamWaitEvent(compute)")?;' '' \
    cuda_gpu_input gpu_views_through_the_loader_match
  run gpu-input-copy-skips-the-consumed-wait rust src/data/gpu_input.rs \
    'event::stream_wait(self.copy, slot.consumed).call("cuStreamWaitEvent(copy)")?;' '' \
    cuda_gpu_input gpu_views_through_the_loader_match
  # The augmentation kernel handed the host's copy of the pixels (`Inputs` holds raw u64
  # addresses) instead of the device buffer's: a GPU faults on the address; the emulated kernel
  # used to read the host bytes, which hold the same pixels, and pass. Caught by the check of
  # addresses outside device memory (emu/memory.cpp, outside_device_memory).
  run gpu-input-kernel-reads-the-host-pixels rust src/data/gpu_input.rs \
    '            src: base + p0 as u64,' '            src: batch.pixels.as_ptr() as u64,' \
    cuda_gpu_input gpu_views_through_the_loader_match
  # The backward-data pass describes dy with dx's descriptor: caught by the emulated cuDNN's
  # descriptor checks (a GPU's cuDNN would read dy with the wrong shape).
  run conv-bwd-data-describes-dy-as-dx rust src/ops/conv2d/cuda.rs \
    '    (w, y, x)' '    (w, x, y)' lib conv2d::cuda_tests
  # A remembered convolution run without the math type it was measured with: the fresh
  # descriptor's CUDNN_DEFAULT_MATH lets f32 run in TF32 on a GPU, as the emulated cuDNN does.
  run conv-runs-without-its-measured-math-type rust src/ops/conv2d/cuda.rs \
    'dnn::set_convolution_math_type(d.conv, c.math).call("cudnnSetConvolutionMathType")?;' '' \
    lib conv2d::cuda_tests::conv2d_parity
  # The algorithm search offered a fixed 256 MiB again: an algorithm needing more is never
  # timed, and on a device with less left only those without a workspace are.
  run conv-search-offered-fixed-workspace rust src/cuda/dnn.rs \
    '    largest_that_fits(sizes, total, |bytes|' \
    '    largest_that_fits(vec![256 << 20], total, |bytes|' \
    cuda_search_workspace the_search_is_offered_the_largest_workspace_that_fits
  # A choice made short of workspace kept on disk, where a later run with room would reuse it.
  run conv-keeps-a-short-search-on-disk rust src/ops/conv2d/cuda.rs \
    'short: (size < wanted).then_some((size, wanted)),' \
    'short: None.filter(|_: &(usize, usize)| size < wanted),' \
    cuda_search_workspace the_search_is_offered_the_largest_workspace_that_fits
  # cuBLAS's default math mode: bf16 products may add split-K partials each rounded to bf16
  # (the emulated cuBLAS then does), where the f32 sum rounded once is wanted.
  run blas-allows-reduced-precision-sums rust src/cuda/blas.rs \
    'cublasMath_t::CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;' \
    'cublasMath_t::CUBLAS_DEFAULT_MATH;' lib matmul::cuda_tests::bf16_products_are_rounded_once
  # The emulation drifting from the real cuDNN: filters held to the tensors' 2^31-element
  # limit, which cuDNN 9.19 does not apply (the case table, pinned to the real library by
  # tests/real_cuda_libraries.rs, says so).
  run emu-cudnn-limits-filters-like-tensors rust src/cuda/emu/cudnn/objects.rs \
    '["k", "c", "h (r)", "w (s)"], false,' '["k", "c", "h (r)", "w (s)"], true,' \
    emu_libraries descriptor_rules_are_cudnn_9_19s
  run nccl-sums-read-before-the-side-stream rust src/comm/nccl_stream.rs \
    'order(self.side, self.compute)?;' '' dist_buckets buckets_on_nccl_ranks
}
PASS=kernel faults
PASS=rust faults
if ((${#RESULTS[@]} == 0)); then
  echo "no planted fault's name contains \"$FILTER\"" >&2
  exit 2
fi
# Each fault's seconds: its build (an incremental rebuild) and its test.
printf '\n%-36s | %5s | %s\n' "planted fault" "s" "caught by"
printf '%s\n' "-------------------------------------+-------+------------------------------------------"
total=0
for r in "${RESULTS[@]}"; do
  rest=${r#*|}
  printf '%-36s | %5s | %s\n' "${r%%|*}" "${rest%%|*}" "${rest#*|}"
  total=$((total + ${rest%%|*}))
done
echo "${#RESULTS[@]} faults in $total s"
[[ $ALL_CAUGHT == 1 ]] && echo "every planted fault was caught" || echo "SOME FAULTS WERE NOT CAUGHT"
[[ $ALL_CAUGHT == 1 ]]
