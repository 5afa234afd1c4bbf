//! A tensor the device cannot hold fails as out of memory, naming the device, after one retry
//! with the device's pool trimmed: the stream synchronised, the pool's unused memory handed
//! back to the driver (on a GPU, memory other allocators such as NCCL's and nvJPEG's then
//! have), and the allocation tried again. Counted exactly: one synchronisation and two
//! allocation calls. One test in its own process (the counters are the process's).
#![cfg(feature = "cuda")]

#[path = "cuda_common.rs"]
mod common;
use common::gpu;

use simclr::cuda::driver::counters::counters;
use simclr::{DType, Device, Error, Tensor};

#[test]
fn a_tensor_too_large_fails_after_one_retry_with_the_pool_trimmed() {
    let Some(Device::Cuda(ordinal)) = gpu() else {
        return;
    };
    let total = simclr::cuda::gpu(ordinal).unwrap().ctx.total_mem().unwrap();
    let n = total / 4 + (1 << 28);
    let before = counters();
    let got = Tensor::zeros(&[n], DType::F32, Device::Cuda(ordinal));
    let after = counters();
    match got {
        Err(Error::OutOfMemory(m)) => {
            assert!(
                m.contains(&format!("cuda:{ordinal} could not allocate")),
                "{m}"
            )
        }
        other => panic!("expected out of memory, got {:?}", other.map(|t| t.numel())),
    }
    assert_eq!(after.synchronizations - before.synchronizations, 1);
    assert_eq!(after.allocations - before.allocations, 2);
}
