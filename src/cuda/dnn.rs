//! The device's cuDNN state: the handle on the device's stream and, per convolution (dtype,
//! `--conv-algorithms` policy and geometry) and direction, the algorithm chosen by cuDNN's measured search and kept on disk
//! by conv_algo.rs. The convolutions themselves are the op's launcher
//! (src/ops/conv2d/cuda.rs).

use super::alloc::DeviceBuffer;
use super::conv_algo::{Chosen, Direction, DiskChoices, Ran};
use super::device::Gpu;
use super::driver::cudnn::{self as dnn, *};
use super::error::{cuda_err, CudaCall};
use crate::conv_policy::{ChoiceSummary, ConvAlgorithms};
use crate::{DType, Result};
use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

/// A convolution's dtype, algorithm policy and geometry (the op's launcher builds it).
pub(crate) type Key = (DType, ConvAlgorithms, [usize; 16]);

/// A direction's choice for one convolution, and how often it ran since the last
/// [`mark_choices`] (for the summary of what the choices cost).
pub(crate) struct Memo<A> {
    pub(crate) chosen: Chosen<A>,
    pub(crate) runs: u64,
}

pub struct Dnn {
    pub(crate) handle: cudnnHandle_t,
    pub(crate) fwd: HashMap<Key, Memo<cudnnConvolutionFwdAlgo_t>>,
    pub(crate) bwd_data: HashMap<Key, Memo<cudnnConvolutionBwdDataAlgo_t>>,
    pub(crate) bwd_filter: HashMap<Key, Memo<cudnnConvolutionBwdFilterAlgo_t>>,
    pub(crate) disk: DiskChoices,
}

// The handle is used only under the device's mutex.
unsafe impl Send for Dnn {}

impl Dnn {
    fn new(gpu: &Gpu) -> Result<Self> {
        let handle = dnn::create_handle().call("cudnnCreate")?;
        unsafe { dnn::set_stream(handle, gpu.cu_stream()) }.call("cudnnSetStream")?;
        Ok(Dnn {
            handle,
            fwd: HashMap::new(),
            bwd_data: HashMap::new(),
            bwd_filter: HashMap::new(),
            disk: DiskChoices::new(gpu.ctx.name().call("cuDeviceGetName")?, dnn::version()),
        })
    }
}

/// The device's cuDNN state, locked (None before its first convolution).
fn lock(gpu: &Gpu) -> Result<MutexGuard<'_, Option<Dnn>>> {
    gpu.dnn
        .lock()
        .map_err(|_| cuda_err("cuDNN handle poisoned"))
}

/// Runs `f` with the device's cuDNN state, creating it on first use.
pub(crate) fn with_dnn<R>(gpu: &Arc<Gpu>, f: impl FnOnce(&mut Dnn) -> Result<R>) -> Result<R> {
    let mut guard = lock(gpu)?;
    if guard.is_none() {
        *guard = Some(Dnn::new(gpu)?);
    }
    match guard.as_mut() {
        Some(d) => f(d),
        None => Err(cuda_err("no cuDNN handle")),
    }
}

/// The summary of the choices of the convolutions `gpu` ran under `policy` since the last
/// [`mark_choices`] (None before its first convolution).
pub(crate) fn choice_summary(
    gpu: &Arc<Gpu>,
    policy: ConvAlgorithms,
) -> Result<Option<ChoiceSummary>> {
    fn ran<'a, A>(
        name: &'static str,
        m: &'a HashMap<Key, Memo<A>>,
    ) -> impl Iterator<Item = Ran<'a>> {
        m.iter()
            .filter(|(_, memo)| memo.runs > 0)
            .map(move |(k, memo)| (name, k, memo.runs))
    }
    Ok(lock(gpu)?.as_ref().map(|d| {
        let all = ran(cudnnConvolutionFwdAlgoPerf_t::NAME, &d.fwd)
            .chain(ran(cudnnConvolutionBwdDataAlgoPerf_t::NAME, &d.bwd_data))
            .chain(ran(
                cudnnConvolutionBwdFilterAlgoPerf_t::NAME,
                &d.bwd_filter,
            ));
        d.disk.summary(policy, all)
    }))
}

/// Starts a new summary: the convolutions run so far (memory-plan probes, say) leave it.
pub(crate) fn mark_choices(gpu: &Arc<Gpu>) -> Result<()> {
    if let Some(d) = lock(gpu)?.as_mut() {
        let runs = d.fwd.values_mut().map(|m| &mut m.runs);
        let runs = runs.chain(d.bwd_data.values_mut().map(|m| &mut m.runs));
        for r in runs.chain(d.bwd_filter.values_mut().map(|m| &mut m.runs)) {
            *r = 0;
        }
    }
    Ok(())
}

/// The search's workspace: the largest that any algorithm it may time asks for (`sizes`, from
/// cudnnGetConvolution*WorkspaceSize), as PyTorch sizes it; when the device cannot give that,
/// the largest of the others it can, down to none. cuDNN times only the algorithms whose
/// workspace fits the one offered: a fixed amount (256 MiB until 2026-12) left out every
/// algorithm needing more, and took 256 MiB for convolutions whose algorithms need a few KiB.
/// A size over the device's total memory (a library may answer one for an algorithm it would
/// never run) is not asked for: the driver could refuse it as an invalid value rather than as
/// out of memory.
pub(crate) fn search_workspace(
    gpu: &Arc<Gpu>,
    sizes: Vec<usize>,
) -> Result<(Option<DeviceBuffer>, usize)> {
    let total = gpu.ctx.total_mem().call("cuDeviceTotalMem")?;
    largest_that_fits(sizes, total, |bytes| {
        match DeviceBuffer::alloc(gpu, bytes) {
            Ok(b) => Ok(Some(b)),
            Err(crate::Error::OutOfMemory(_)) => Ok(None),
            Err(e) => Err(e),
        }
    })
}

/// The first of `sizes` up to `limit`, largest first, that `alloc` gives (None: it does not
/// fit), and its size; (None, 0) when none does or all are 0.
fn largest_that_fits<B>(
    mut sizes: Vec<usize>,
    limit: usize,
    mut alloc: impl FnMut(usize) -> Result<Option<B>>,
) -> Result<(Option<B>, usize)> {
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes.dedup();
    for bytes in sizes.into_iter().filter(|&b| b > 0 && b <= limit) {
        if let Some(b) = alloc(bytes)? {
            return Ok((Some(b), bytes));
        }
    }
    Ok((None, 0))
}

#[cfg(test)]
mod tests {
    use super::largest_that_fits;
    use crate::Error;

    const GIB: usize = 1 << 30;

    /// An allocator of `free` bytes that records what it was asked for.
    fn device(
        free: usize,
        asked: &mut Vec<usize>,
    ) -> impl FnMut(usize) -> crate::Result<Option<usize>> + '_ {
        move |bytes| {
            asked.push(bytes);
            Ok((bytes <= free).then_some(bytes))
        }
    }

    #[test]
    fn the_largest_size_that_fits_is_taken() {
        let sizes = vec![4 << 10, 0, 300 << 20, 4 << 10, 12 << 20];
        let mut asked = Vec::new();
        let got = largest_that_fits(sizes.clone(), GIB, device(GIB, &mut asked)).unwrap();
        assert_eq!(got, (Some(300 << 20), 300 << 20));
        assert_eq!(asked, [300 << 20]);
        // 300 MiB does not fit in 100: the next largest does; a repeated size is asked once.
        asked.clear();
        let got = largest_that_fits(sizes.clone(), GIB, device(100 << 20, &mut asked)).unwrap();
        assert_eq!(got, (Some(12 << 20), 12 << 20));
        assert_eq!(asked, [300 << 20, 12 << 20]);
        asked.clear();
        let got = largest_that_fits(sizes, GIB, device(1 << 10, &mut asked)).unwrap();
        assert_eq!(got, (None, 0), "nothing fits: the search is offered none");
        assert_eq!(
            asked,
            [300 << 20, 12 << 20, 4 << 10],
            "0 bytes is never allocated"
        );
        let got = largest_that_fits(vec![0, 0], GIB, device(0, &mut asked)).unwrap();
        assert_eq!(got, (None, 0));
        // A size over the device's memory is never asked for.
        asked.clear();
        let sizes = vec![usize::MAX, 2 * GIB, 12 << 20];
        let got = largest_that_fits(sizes, GIB, device(usize::MAX, &mut asked)).unwrap();
        assert_eq!(got, (Some(12 << 20), 12 << 20));
        assert_eq!(asked, [12 << 20]);
    }

    #[test]
    fn an_allocation_error_other_than_memory_is_returned() {
        let broken = |_| Err::<Option<()>, _>(Error::Cuda("context lost".into()));
        assert!(largest_that_fits(vec![1 << 20], GIB, broken).is_err());
    }
}
