//! The emulated device's own checks (emu/, src/cuda/emu): kernels of the test-only module
//! `test_faults` (emu/tests/faults.cu) launched through the driver floor, each either computing
//! the right values or failing with a message that names the fault.
#![cfg(feature = "cuda-emu")]

#[path = "support/emu_launch.rs"]
mod emu_launch;

use cudarc::driver::sys::CUmemPool_attribute::{
    CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT as RESERVED_MEM_CURRENT,
    CU_MEMPOOL_ATTR_USED_MEM_CURRENT as USED_MEM_CURRENT,
};
use emu_launch::*;
use simclr::cuda::driver::cu;

#[test]
fn elementwise_kernel_computes() {
    let c = ctx();
    let x: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5 - 3.0).collect();
    let (mut px, mut py, mut n) = (upload(&c, &x), alloc(4000), 1000i32);
    launch(&c, "twice", (3, 1, 1), (128, 1, 1), &mut params!(px, py, n)).unwrap();
    let y: Vec<f32> = download(&c, py, 1000).unwrap();
    let want: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
    assert_eq!(y, want);
}

#[test]
fn block_sum_with_shuffles_and_shared_memory() {
    let c = ctx();
    let x: Vec<f32> = (0..1024).map(|i| (i % 7) as f32).collect();
    let (mut px, mut po) = (upload(&c, &x), alloc(16));
    launch(
        &c,
        "block_sum_of",
        (4, 1, 1),
        (256, 1, 1),
        &mut params!(px, po),
    )
    .unwrap();
    let got: Vec<f32> = download(&c, po, 4).unwrap();
    let want: Vec<f32> = x.chunks(256).map(|ch| ch.iter().sum()).collect();
    assert_eq!(got, want);
}

#[test]
fn write_past_the_end_is_caught() {
    let c = ctx();
    let (mut py, mut n) = (alloc(400), 100i32);
    expect_err(
        launch(
            &c,
            "fill_index_inclusive",
            (1, 1, 1),
            (128, 1, 1),
            &mut params!(py, n),
        ),
        &[
            "kernel fill_index_inclusive block (0,0,0) thread (100,0,0)",
            "4-byte write",
            "0 bytes past the end of a 400-byte allocation",
        ],
    );
}

#[test]
fn read_past_the_end_is_caught() {
    let c = ctx();
    let (mut px, mut py, mut n) = (upload(&c, &[1f32; 100]), alloc(800), 101i32);
    expect_err(
        launch(&c, "twice", (1, 1, 1), (256, 1, 1), &mut params!(px, py, n)),
        &[
            "kernel twice",
            "4-byte read",
            "past the end of a 400-byte allocation",
        ],
    );
}

/// Messages name the source line of the access, in a template's instance too.
#[test]
fn messages_name_the_kernel_source_line() {
    let c = ctx();
    let (mut px, mut py, mut i) = (upload(&c, &[1f32; 8]), alloc(4), 8i32);
    let e = launch(
        &c,
        "template_reads_at",
        (1, 1, 1),
        (1, 1, 1),
        &mut params!(px, py, i),
    )
    .unwrap_err();
    assert!(e.contains("past the end of a 32-byte allocation"), "{e}");
    let src = include_str!("../emu/tests/faults.cu");
    let line = 1 + src
        .lines()
        .position(|l| l.contains("return f[0] + p[i];"))
        .unwrap();
    assert!(
        e.contains(&format!(", in faults.cu:{line}")),
        "{e} does not name faults.cu:{line}"
    );
}

/// Those lines come from addr2line over the kernels' line tables, which must name the kernel
/// sources for every function of every module, never the generated wrappers (`mod_<m>.cpp`,
/// which include them): GCC 12's DWARF 5 tables did, for template instances.
#[test]
fn line_tables_name_the_kernel_sources() {
    use std::process::Command;
    let exe = std::env::current_exe().unwrap();
    let nm = Command::new("nm")
        .arg("--defined-only")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(nm.status.success(), "nm failed");
    // The modules' own functions: C++ names inside their namespaces (emu_mod_<m>).
    let addrs: Vec<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [a, "T" | "W" | "t" | "w", s] if s.contains("emu_mod_") => Some(format!("0x{a}")),
            _ => None,
        })
        .collect();
    assert!(
        addrs.len() > 100,
        "{} functions of emulated modules",
        addrs.len()
    );
    let out = Command::new("addr2line")
        .arg("-e")
        .arg(&exe)
        .args(&addrs)
        .output()
        .unwrap();
    assert!(out.status.success(), "addr2line failed");
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    let files: Vec<&str> = lines
        .lines()
        .map(|l| l.rsplit('/').next().unwrap_or(l))
        .collect();
    assert_eq!(files.len(), addrs.len());
    let wrong: Vec<&&str> = files.iter().filter(|f| f.starts_with("mod_")).collect();
    assert!(
        wrong.is_empty(),
        "{} of {} functions name a wrapper, e.g. {:?}",
        wrong.len(),
        files.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(files.iter().any(|f| f.starts_with("pool.cu:")), "{files:?}");
}

#[test]
fn read_of_never_written_memory_is_caught() {
    let c = ctx();
    let (mut px, mut py, mut n) = (alloc(400), alloc(400), 100i32);
    expect_err(
        launch(&c, "twice", (1, 1, 1), (128, 1, 1), &mut params!(px, py, n)),
        &["never-written", "initcheck", "of a 400-byte allocation"],
    );
    // Nor may the host read it back.
    let e = download::<f32>(&c, px, 100).unwrap_err();
    assert!(e.contains("never-written"), "{e}");
}

#[test]
fn misaligned_accesses_are_caught() {
    let c = ctx();
    let x: Vec<f32> = (0..16).map(|i| i as f32).collect();
    let (px, py) = (upload(&c, &x), alloc(32));
    // One thread of `kernel(x, y, offset)`: it reads x `offset` bytes in.
    let at = |kernel: &str, offset: i32| {
        let (mut px, mut py, mut offset) = (px, py, offset);
        launch(
            &c,
            kernel,
            (1, 1, 1),
            (1, 1, 1),
            &mut params!(px, py, offset),
        )
    };
    // 16 bytes in: aligned, the 16-byte loads read elements 4..12.
    at("load_w_at", 16).unwrap();
    let y: Vec<f32> = download(&c, py, 8).unwrap();
    assert_eq!(y, x[4..12]);
    // 8 bytes in: every element is in bounds and written, but a GPU faults on the access.
    expect_err(
        at("load_w_at", 8),
        &[
            "kernel load_w_at block (0,0,0) thread (0,0,0)",
            "misaligned access",
            "needs 16-byte alignment",
            "vec.cuh:",
        ],
    );
    // A float 2 bytes in: x86 reads it (this one was silent before the check), a GPU faults.
    at("read_float_at", 4).unwrap();
    assert_eq!(download::<f32>(&c, py, 1).unwrap(), [1.0]);
    expect_err(
        at("read_float_at", 2),
        &[
            "kernel read_float_at",
            "'const float'",
            "needs 4-byte alignment",
            "faults.cu:",
        ],
    );
}

#[test]
fn use_after_free_is_caught() {
    let c = ctx();
    let (mut px, mut py, mut n) = (upload(&c, &[1f32; 64]), alloc(256), 64i32);
    unsafe { cu::free_async(px, c.stream()) }.unwrap();
    expect_err(
        launch(&c, "twice", (1, 1, 1), (64, 1, 1), &mut params!(px, py, n)),
        &["4-byte read", "use after free", "freed 256-byte allocation"],
    );
    assert!(
        unsafe { cu::free_async(px, c.stream()) }.is_err(),
        "double free"
    );
}

#[test]
fn bad_launch_configurations_are_refused() {
    let c = ctx();
    let (mut px, mut py, mut n) = (upload(&c, &[1f32; 4]), alloc(16), 4i32);
    for (grid, block, why) in [
        ((1, 1, 1), (1025, 1, 1), "more than 1024 threads"),
        ((1, 1, 1), (32, 32, 2), "more than 1024 threads"),
        ((1, 65536, 1), (32, 1, 1), "grid dimensions exceed"),
        ((0, 1, 1), (32, 1, 1), "zero"),
        ((1, 1, 1), (32, 0, 1), "zero"),
    ] {
        expect_err(
            launch(&c, "twice", grid, block, &mut params!(px, py, n)),
            &[why],
        );
    }
}

#[test]
fn a_missing_barrier_is_caught_reproducibly() {
    let c = ctx();
    let x: Vec<f32> = (0..256).map(|i| i as f32).collect();
    let (px, po) = (upload(&c, &x), alloc(4));
    let run = |sync: i32| {
        let (mut px, mut po, mut s) = (px, po, sync);
        launch(
            &c,
            "shared_sum",
            (1, 1, 1),
            (256, 1, 1),
            &mut params!(px, po, s),
        )
    };
    run(1).unwrap();
    assert_eq!(download::<f32>(&c, po, 1).unwrap(), [32640.0]);
    // Thread 0 sums s[] while the others may not have stored their values yet: which of the two
    // errors (a race with a thread that did, or a read of bytes nobody wrote) depends on the
    // schedule, which one seed fixes.
    let racy = run(0).unwrap_err();
    assert!(
        racy.contains("kernel shared_sum block (0,0,0) thread (0,0,0)")
            && (racy.contains("shared-memory race (read after write)")
                || racy.contains("which no thread of its block has written")),
        "{racy}"
    );
    assert_eq!(run(0).unwrap_err(), racy, "one seed, one schedule");
}

#[test]
fn threads_leave_a_barrier_in_a_seeded_shuffled_order() {
    let c = ctx();
    let order = |c: &cu::Context| {
        let (mut po, mut pc) = (alloc(256), upload(c, &[0u32]));
        launch(
            c,
            "barrier_order",
            (1, 1, 1),
            (64, 1, 1),
            &mut params!(po, pc),
        )
        .unwrap();
        download::<u32>(c, po, 64).unwrap()
    };
    let a = order(&c);
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, (0..64).collect::<Vec<u32>>());
    assert_ne!(a, sorted, "threads resumed in launch order");
    assert_eq!(order(&c), a, "one seed, one order");
}

#[test]
fn shuffle_masks_are_checked() {
    let c = ctx();
    let (mut py, mut mask) = (alloc(128), 0xffff_ffffu32);
    launch(
        &c,
        "shuffle_with_mask",
        (1, 1, 1),
        (32, 1, 1),
        &mut params!(py, mask),
    )
    .unwrap();
    let y: Vec<f32> = download(&c, py, 32).unwrap();
    assert_eq!(y, (0..32).map(|i| (i ^ 16) as f32).collect::<Vec<_>>());
    let mut half = 0x0000_ffffu32;
    expect_err(
        launch(
            &c,
            "shuffle_with_mask",
            (1, 1, 1),
            (32, 1, 1),
            &mut params!(py, half),
        ),
        &["__shfl_xor_sync with mask 0x0000ffff"],
    );
    // Depending on the schedule, the two groups meet (they disagree on the mask) or the first
    // group leaves while the second waits for it; both are errors of the same shuffle.
    expect_err(
        launch(
            &c,
            "shuffle_masks_disagree",
            (1, 1, 1),
            (32, 1, 1),
            &mut params!(py),
        ),
        &[
            "kernel shuffle_masks_disagree",
            "__shfl_xor_sync",
            "0xffffffff",
        ],
    );
    // A full mask in a block of 16 threads names lanes that do not exist.
    expect_err(
        launch(
            &c,
            "shuffle_with_mask",
            (1, 1, 1),
            (16, 1, 1),
            &mut params!(py, mask),
        ),
        &["do not exist"],
    );
}

#[test]
fn divergent_barriers_and_deadlocks_are_caught() {
    let c = ctx();
    let mut py = alloc(1024);
    expect_err(
        launch(
            &c,
            "early_exit_barrier",
            (1, 1, 1),
            (64, 1, 1),
            &mut params!(py),
        ),
        &["kernel early_exit_barrier block (0,0,0)", "exit"],
    );
    expect_err(
        launch(
            &c,
            "warp_barrier_deadlock",
            (1, 1, 1),
            (32, 1, 1),
            &mut params!(py),
        ),
        &[
            "deadlock",
            "wait at __syncthreads",
            "__shfl_xor_sync with mask 0xffffffff",
        ],
    );
}

#[test]
fn pool_counters_and_out_of_memory() {
    let _ = ctx();
    let (free, total) = cu::mem_get_info().unwrap();
    assert!(total >= 1 << 30 && free <= total);
    // Other tests allocate concurrently on device 0: this one uses device 3 alone.
    let c3 = cu::Context::new(3).unwrap();
    c3.bind_to_thread().unwrap();
    let dev = c3.cu_device();
    let before = used_of(dev);
    let p = alloc(1000);
    assert_eq!(used_of(dev), before + 1024, "used counts 256-byte granules");
    // The emulated pool keeps nothing back (an allocation fails only past the total), so its
    // reserved memory is what is used, and free + reserved is the whole device, as the memory
    // plan's budget reads them (on a GPU: all but what others hold).
    let (free3, total3) = cu::mem_get_info().unwrap();
    assert_eq!(pool_counter(dev, RESERVED_MEM_CURRENT), before + 1024);
    assert_eq!(free3 as u64 + before + 1024, total3 as u64);
    let e = unsafe { cu::malloc_sync(total + 1) }.unwrap_err();
    assert!(e.is_out_of_memory(), "{e:?}");
    unsafe { cu::free_async(p, c3.stream()) }.unwrap();
    assert_eq!(used_of(dev), before);
    assert!(cu::Context::new(4).is_err(), "there are 4 emulated devices");
}

fn pool_counter(dev: cu::CUdevice, attr: cudarc::driver::sys::CUmemPool_attribute) -> u64 {
    cu::pool_get_attribute(dev, attr).unwrap()
}

fn used_of(dev: cu::CUdevice) -> u64 {
    pool_counter(dev, USED_MEM_CURRENT)
}

/// Launches `module`'s `name` with no arguments: only the checks made before the arguments
/// are read can pass or fail it.
fn launch_bare(
    c: &cu::Context,
    module: &'static str,
    name: &str,
    threads: u32,
) -> Result<(), String> {
    unsafe {
        let f = cu::module_get_function(cu::module_load(module, &[]).unwrap(), name).unwrap();
        cu::launch_kernel(f, (1, 1, 1), (threads, 1, 1), 0, c.stream(), &mut [])
    }
    .map_err(|e| format!("{e:?}"))
}

#[test]
fn blocks_a_gpu_would_refuse_are_refused() {
    let c = ctx();
    // ntxent_grad is compiled with __launch_bounds__(256): 512 threads exceed it.
    expect_err(
        launch_bare(&c, "ntxent", "ntxent_grad_f32", 512),
        &[
            "CUDA_ERROR_INVALID_VALUE",
            "ntxent_grad_f32",
            "512",
            "__launch_bounds__ of 256",
        ],
    );
    // At 256 threads the launch gets as far as its arguments.
    expect_err(
        launch_bare(&c, "ntxent", "ntxent_grad_f32", 256),
        &["takes 9 parameters, the launch passed 0"],
    );
    // batch_norm_reduce_f32 has no launch bounds, but its registers (over 64 per thread)
    // do not fit 1024 threads on one SM; 512 fit.
    let regs = simclr::cuda::kernel_resources::of("batch_norm_reduce_f32")
        .unwrap()
        .registers;
    assert!(regs > 64, "{regs}");
    expect_err(
        launch_bare(&c, "batch_norm", "batch_norm_reduce_f32", 1024),
        &[
            "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
            &format!("{regs} registers"),
        ],
    );
    expect_err(
        launch_bare(&c, "batch_norm", "batch_norm_reduce_f32", 512),
        &["parameters, the launch passed 0"],
    );
}

/// CUDA orders nothing between the blocks of one launch: a block sees another's store only
/// after a __threadfence() of the storing block (then, say, an atomic ticket). The emulator
/// keeps each store pending until then, and refuses a read of another block's pending bytes.
#[test]
fn reads_of_another_blocks_unfenced_stores_are_caught() {
    let c = ctx();
    let x: Vec<f32> = (0..6).map(|i| i as f32 + 0.5).collect();
    for (mut fence, ok) in [(1i32, true), (0, false)] {
        let (mut px, mut pp, mut pd, mut po) =
            (upload(&c, &x), alloc(24), upload(&c, &[0u32]), alloc(4));
        let r = launch(
            &c,
            "last_block_sum",
            (6, 1, 1),
            (32, 1, 1),
            &mut params!(px, pp, pd, po, fence),
        );
        if ok {
            r.unwrap();
            assert_eq!(download::<f32>(&c, po, 1).unwrap(), vec![18.0]);
        } else {
            expect_err(
                r,
                &[
                    "kernel last_block_sum",
                    "4-byte read",
                    "of a 24-byte allocation",
                    "another block of this launch",
                    "without a __threadfence()",
                ],
            );
        }
    }
    // The end of a launch publishes everything: the host and the next launch read it.
    let (mut px, mut py, mut n) = (upload(&c, &x), alloc(24), 6i32);
    launch(&c, "twice", (3, 1, 1), (2, 1, 1), &mut params!(px, py, n)).unwrap();
    let (mut pz, mut n) = (alloc(24), 6i32);
    launch(&c, "twice", (6, 1, 1), (1, 1, 1), &mut params!(py, pz, n)).unwrap();
    let z: Vec<f32> = download(&c, pz, 6).unwrap();
    assert_eq!(z, x.iter().map(|v| 4.0 * v).collect::<Vec<_>>());
}

#[test]
fn plain_stores_of_two_blocks_to_the_same_bytes_are_caught() {
    let c = ctx();
    let mut py = upload(&c, &[0u32]);
    let mut store = |mut atomic: i32| {
        let p = &mut params!(py, atomic);
        launch(&c, "all_blocks_store_one_place", (4, 1, 1), (32, 1, 1), p)
    };
    store(1).unwrap();
    expect_err(
        store(0),
        &[
            "kernel all_blocks_store_one_place",
            "4-byte write",
            "two blocks store to the same bytes in one launch",
        ],
    );
    assert!(download::<u32>(&c, py, 1).unwrap()[0] < 4);
}

/// A kernel may reach device memory, its block's shared memory, its own stack (local memory),
/// `__constant__` data and pinned host memory; any other address (a host pointer, null,
/// another thread's local variable) faults on a GPU (CUDA_ERROR_ILLEGAL_ADDRESS). Without the
/// check the emulated kernel read host memory as if nothing were wrong, or killed the process.
#[test]
fn accesses_outside_device_memory_are_caught() {
    let c = ctx();
    let x: Vec<f32> = (0..8).map(|i| i as f32 - 2.5).collect();
    let (mut px, mut py, mut n) = (upload(&c, &x), alloc(32), 8i32);
    let y: Vec<f32> = launch_read(
        &c,
        "constants_and_locals",
        1,
        8,
        &mut params!(px, py, n),
        py,
        8,
    )
    .unwrap();
    let want: Vec<f32> = (0..8)
        .map(|t| x[t] * (1 + t % 4) as f32 + (10 * (t % 4) + t) as f32)
        .collect();
    assert_eq!(y, want);

    // A host vector's address where a device pointer belongs (one thread: the first access).
    let (mut host, mut n) = (x.as_ptr() as u64, 8i32);
    expect_err(
        launch(&c, "twice", (1, 1, 1), (1, 1, 1), &mut params!(host, py, n)),
        &[
            "kernel twice block (0,0,0) thread (0,0,0)",
            &format!("4-byte read at {:#x}", x.as_ptr() as u64),
            "faults.cu:",
            "not device memory",
            "CUDA_ERROR_ILLEGAL_ADDRESS",
        ],
    );
    // Null: before the check, a SIGSEGV of the whole test process.
    let (mut null, mut n) = (0u64, 8i32);
    expect_err(
        launch(&c, "twice", (1, 1, 1), (1, 1, 1), &mut params!(null, py, n)),
        &[
            "4-byte read at 0x0,",
            "through a null pointer",
            "CUDA_ERROR_ILLEGAL_ADDRESS",
        ],
    );
    // Pinned host memory: a GPU's kernels reach it through unified addressing.
    let pinned = unsafe { simclr::cuda::driver::host::malloc_host(32) }.unwrap();
    unsafe { std::ptr::copy_nonoverlapping(x.as_ptr(), pinned as *mut f32, 8) };
    let (mut pp, mut n) = (pinned as u64, 8i32);
    let y: Vec<f32> = launch_read(&c, "twice", 1, 8, &mut params!(pp, py, n), py, 8).unwrap();
    assert_eq!(y, x.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    unsafe { simclr::cuda::driver::host::free_host(pinned, 32) }.unwrap();
    // Once freed, it is host memory like any other.
    let mut n = 8i32;
    expect_err(
        launch(&c, "twice", (1, 1, 1), (8, 1, 1), &mut params!(pp, py, n)),
        &["not device memory"],
    );

    // Another thread's local array, its address handed over through shared memory.
    let mut po = alloc(4 * 32);
    let mut neighbour = |mut reader: i32| {
        launch_read::<f32>(
            &c,
            "reads_a_neighbours_local",
            1,
            32,
            &mut params!(po, reader),
            po,
            32,
        )
    };
    let own = neighbour(0).unwrap();
    assert_eq!(
        own,
        (0..32).map(|t| (4 * t + t % 4) as f32).collect::<Vec<_>>()
    );
    expect_err(
        neighbour(5).map(drop),
        &[
            "kernel reads_a_neighbours_local block (0,0,0) thread (5,0,0)",
            "the stack (local memory) of thread (0,0,0)",
        ],
    );
}

/// Two threads of one block touching the same bytes of device memory in one barrier interval,
/// one storing, with nothing ordering them: a race on a GPU, whatever the emulated order gave.
#[test]
fn races_between_the_threads_of_a_block_in_device_memory_are_caught() {
    let c = ctx();
    // (kind: 0 read after thread 0's store, 1 a second store; the other thread; what orders
    // them: 0 nothing, 1 __syncwarp, 2 __syncthreads) -> y, or the message's parts.
    let run = |kind: i32, second: i32, order: i32| {
        let (mut py, mut kind, mut second, mut order) =
            (upload(&c, &[0f32; 2]), kind, second, order);
        launch_read::<f32>(
            &c,
            "global_handoff",
            1,
            64,
            &mut params!(py, kind, second, order),
            py,
            2,
        )
    };
    assert_eq!(run(0, 1, 1).unwrap(), [1.0, 1.0]);
    assert_eq!(run(0, 40, 2).unwrap(), [1.0, 1.0]);
    assert_eq!(run(1, 40, 2).unwrap(), [2.0, 0.0]);
    assert_eq!(run(1, 0, 0).unwrap(), [2.0, 0.0]);
    expect_err(
        run(0, 1, 0).map(drop),
        &[
            "kernel global_handoff block (0,0,0) thread (1,0,0)",
            "global-memory race (read after write): 4-byte read at 0x",
            "of bytes thread (0,0,0) of this block stored in the same barrier interval",
            ", in faults.cu:",
        ],
    );
    for order in [0, 1] {
        // A __syncwarp orders nothing between two warps (which of the two stores first is
        // up to the seeded schedule: the second one fails).
        expect_err(
            run(1, 40, order).map(drop),
            &[
                "global-memory race (write after write)",
                "0,0) of this block stored",
                "which store lands is up to the GPU",
            ],
        );
    }
}

/// A load and another thread's store of the same bytes in one interval, the load first in the
/// emulated order (write after read), leave no trace: loads leave no stamp. Each block draws its
/// own order, so where a launch has the pair in several blocks, a block that ran the store first
/// reports the race as a read after write: all 16 blocks miss it with probability 2^-16.
#[test]
fn a_write_after_read_race_shows_in_a_block_that_stored_first() {
    let c = ctx();
    let run = |blocks: usize| {
        let zeros = vec![0f32; blocks];
        let (mut py, mut pz) = (upload(&c, &zeros), upload(&c, &zeros));
        launch_read::<f32>(
            &c,
            "global_read_beside_store",
            blocks as u32,
            64,
            &mut params!(py, pz),
            pz,
            blocks,
        )
    };
    // One block: whichever order seed 1 drew, nothing but this race can be reported.
    match run(1) {
        Ok(z) => assert_eq!(z, [0.0], "the load ran first and read the old value"),
        Err(e) => assert!(e.contains("read after write"), "{e}"),
    }
    expect_err(
        run(16).map(drop),
        &[
            "kernel global_read_beside_store block (",
            "thread (0,0,0): global-memory race (read after write): 4-byte read at 0x",
            "of bytes thread (1,0,0) of this block stored in the same barrier interval",
        ],
    );
}

/// Distance in units in the last place between two finite floats of one sign.
fn ulps(a: f32, b: f32) -> u32 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
}

#[test]
#[cfg(target_arch = "x86_64")]
fn multiply_adds_are_fused_as_nvcc_fuses_them() {
    let c = ctx();
    // a·b exact needs 48 bits: rounded before the add it loses what the fused form keeps.
    let n = 1000;
    let a: Vec<f32> = (0..n).map(|i| 1.0 + i as f32 * 1.1e-4).collect();
    let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.7e-4).collect();
    let cc: Vec<f32> = a.iter().zip(&b).map(|(x, y)| -(x * y)).collect();
    let (mut pa, mut pb, mut pc) = (upload(&c, &a), upload(&c, &b), upload(&c, &cc));
    let (mut py, mut nn) = (alloc(4 * n), n as i32);
    launch(
        &c,
        "multiply_add",
        (4, 1, 1),
        (256, 1, 1),
        &mut params!(pa, pb, pc, py, nn),
    )
    .unwrap();
    let y: Vec<f32> = download(&c, py, n).unwrap();
    let fused: Vec<f32> = (0..n).map(|i| a[i].mul_add(b[i], cc[i])).collect();
    if std::arch::is_x86_feature_detected!("fma") {
        assert_eq!(y, fused, "the kernel's a·b + c is one fused multiply-add");
        // The separately rounded form is 0 for every i here; the fused one keeps the residue.
        assert!(y.iter().filter(|&&v| v != 0.0).count() > n / 2);
    } else {
        println!("this CPU has no FMA: contraction is not emulated here");
    }
}

/// expf of each of `x`, then logf of each, computed by the test kernel.
fn exp_and_log(c: &cu::Context, x: &[f32]) -> Vec<f32> {
    let n = x.len();
    let (mut px, mut py, mut nn) = (upload(c, x), alloc(8 * n), n as i32);
    let blocks = n.div_ceil(256) as u32;
    launch(
        c,
        "exp_and_log",
        (blocks, 1, 1),
        (256, 1, 1),
        &mut params!(px, py, nn),
    )
    .unwrap();
    download(c, py, 2 * n).unwrap()
}

#[test]
fn expf_and_logf_are_as_far_from_correctly_rounded_as_cuda_permits() {
    let c = ctx();
    let n = 4096;
    let x: Vec<f32> = (0..n).map(|i| 0.001 + i as f32 * 0.01).collect();
    let y = exp_and_log(&c, &x);
    let (mut moved, mut worst) = ([0; 2], [0; 2]);
    for (i, &v) in x.iter().enumerate() {
        // Rust's exp and ln of f32 are glibc's, correctly rounded on these arguments.
        for (k, (got, want)) in [(y[i], v.exp()), (y[n + i], v.ln())]
            .into_iter()
            .enumerate()
        {
            if !want.is_normal() {
                continue;
            }
            let d = ulps(got, want);
            moved[k] += (d > 0) as usize;
            worst[k] = worst[k].max(d);
        }
    }
    // CUDA's bounds: expf 2 ulp, logf 1 ulp; most results moved, none past its bound.
    assert_eq!(
        worst,
        [2, 1],
        "largest distance from glibc in ulp (expf, logf)"
    );
    assert!(moved.iter().all(|&m| m > n / 2), "{moved:?} of {n} moved");
    // The exact cases stay exact.
    let e = exp_and_log(&c, &[0.0, 1.0]);
    assert_eq!((e[0], e[3]), (1.0, 0.0), "expf(0), logf(1)");
}
