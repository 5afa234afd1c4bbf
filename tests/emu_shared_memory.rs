//! Block-shared memory on the emulated device (emu/shared.cpp): races between the threads of a
//! block and reads of shared bytes the block never wrote fail the launch, naming both threads;
//! the same kernels with the barrier (or a __syncwarp within a warp) compute the right values.
#![cfg(feature = "cuda-emu")]

#[path = "support/emu_launch.rs"]
mod emu_launch;

use emu_launch::*;

const WRITE_READ: i32 = 0;
const READ_WRITE: i32 = 1;
const WRITE_WRITE: i32 = 2;
const NOTHING: i32 = 0;
const SYNCWARP: i32 = 1;
const SYNCTHREADS: i32 = 2;

/// shared_handoff with 64 threads: s[0] passes from thread 0 to thread `second`.
fn handoff(kind: i32, second: i32, order: i32) -> Result<Vec<f32>, String> {
    let c = ctx();
    let mut out = upload(&c, &[0f32; 2]);
    let (mut k, mut s, mut o) = (kind, second, order);
    launch_read(
        &c,
        "shared_handoff",
        1,
        64,
        &mut params!(out, k, s, o),
        out,
        2,
    )
}

#[test]
fn two_lanes_need_a_syncwarp_or_a_barrier_between_them() {
    let hazards = [
        (
            WRITE_READ,
            "read after write",
            "reads 4 bytes",
            "129, that",
            "wrote",
        ),
        (
            READ_WRITE,
            "write after read",
            "writes 4 bytes",
            "130, that",
            "read",
        ),
        (
            WRITE_WRITE,
            "write after write",
            "writes 4 bytes",
            "130, that",
            "also wrote",
        ),
    ];
    for (kind, name, what, line, verb) in hazards {
        // The shuffle makes lane 1 run after lane 0 here, but orders no memory on a GPU.
        let e = handoff(kind, 1, NOTHING).unwrap_err();
        for part in [
            "kernel shared_handoff block (0,0,0) thread (1,0,0)",
            &format!("shared-memory race ({name})"),
            what,
            " at byte 0 of __shared__ s (faults.cu:117), in faults.cu:",
            line,
            &format!("that thread (0,0,0) {verb}"),
        ] {
            assert!(e.contains(part), "{name}: {e:?} lacks {part:?}");
        }
        for order in [SYNCWARP, SYNCTHREADS] {
            let out = handoff(kind, 1, order).unwrap();
            let want = [[0.0, 2.0], [1.0, 0.0], [0.0, 0.0]][kind as usize];
            assert_eq!(out, want, "{name} with order {order}");
        }
    }
}

#[test]
fn a_syncwarp_does_not_order_two_warps() {
    for kind in [WRITE_READ, READ_WRITE, WRITE_WRITE] {
        let e = handoff(kind, 33, SYNCWARP).unwrap_err();
        assert!(e.contains("shared-memory race ("), "{e}");
        assert!(
            e.contains("thread (33,0,0)") && e.contains("thread (0,0,0)"),
            "{e}"
        );
        handoff(kind, 33, SYNCTHREADS).unwrap();
    }
}

#[test]
fn many_readers_then_one_writer() {
    let c = ctx();
    let run = |threads: u32, order: i32| {
        let (mut out, mut o) = (alloc(4 * threads as usize), order);
        launch_read::<f32>(
            &c,
            "readers_then_writer",
            1,
            threads,
            &mut params!(out, o),
            out,
            threads as usize,
        )
    };
    assert_eq!(run(32, SYNCWARP).unwrap(), vec![5.0; 32]);
    for (threads, order) in [(32, NOTHING), (64, SYNCWARP), (64, NOTHING)] {
        let e = run(threads, order).unwrap_err();
        assert!(
            e.contains("shared-memory race (write after read)")
                || e.contains("shared-memory race (read after write)"),
            "{threads} threads, order {order}: {e}"
        );
    }
}

#[test]
fn reads_of_shared_bytes_the_block_never_wrote_are_caught() {
    let c = ctx();
    let run = |blocks: u32, writers: u32| {
        let (mut out, mut w) = (alloc(256 * blocks as usize), writers);
        launch_read::<f32>(
            &c,
            "shared_neighbour",
            blocks,
            64,
            &mut params!(out, w),
            out,
            64 * blocks as usize,
        )
    };
    let want: Vec<f32> = (0..128).map(|i| ((i % 64) ^ 1) as f32).collect();
    assert_eq!(run(2, 2).unwrap(), want);
    for (blocks, writers, block) in [(1, 0, "(0,0,0)"), (2, 1, "(1,0,0)")] {
        // In the second case block 1 reads what block 0 left (on this host thread or another):
        // on a GPU, whatever was there.
        let e = run(blocks, writers).unwrap_err();
        for part in [
            &format!("kernel shared_neighbour block {block} thread"),
            "of __shared__ s (faults.cu:147), in faults.cu:151",
            "which no thread of its block has written",
        ] {
            assert!(e.contains(part), "{e:?} lacks {part:?}");
        }
    }
}

#[test]
fn shared_atomics_race_only_with_plain_accesses() {
    let c = ctx();
    let run = |sync: i32| {
        let (mut out, mut s) = (alloc(8), sync);
        launch_read::<u32>(
            &c,
            "shared_atomic_count",
            2,
            96,
            &mut params!(out, s),
            out,
            2,
        )
    };
    assert_eq!(run(1).unwrap(), [96, 96]);
    let e = run(0).unwrap_err();
    assert!(
        e.contains("shared-memory race (read after write)")
            && e.contains("several threads (atomics)")
            || e.contains("shared-memory race (write after read)")
                && e.contains("thread (0,0,0) read"),
        "{e}"
    );
}

#[test]
fn accesses_outside_a_shared_variable_are_caught() {
    let c = ctx();
    let run = |shift: i32, read: i32| {
        let (mut out, mut sh, mut r) = (alloc(256), shift, read);
        launch_read::<f32>(
            &c,
            "shared_out_of_bounds",
            1,
            64,
            &mut params!(out, sh, r),
            out,
            64,
        )
    };
    assert_eq!(run(0, 1).unwrap(), vec![1.0; 64]);
    for (shift, read, parts) in [
        (
            1,
            1,
            [
                "thread (63,0,0): a 4-byte read at faults.cu:175 ",
                "starts 0 bytes past the end of the 256 bytes of __shared__ s (faults.cu:168)",
            ],
        ),
        (
            -1,
            0,
            [
                "thread (0,0,0): a 4-byte write at faults.cu:177 ",
                "ends 0 bytes before the start of __shared__ s (faults.cu:168)",
            ],
        ),
    ] {
        let e = run(shift, read).unwrap_err();
        for part in parts {
            assert!(e.contains(part), "shift {shift}: {e:?} lacks {part:?}");
        }
    }
}
