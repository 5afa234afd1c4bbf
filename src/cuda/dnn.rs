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

/// Workspace offered to the algorithm search; algorithms needing more are not considered.
const FIND_WORKSPACE: usize = 256 << 20;

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

/// The search's workspace: as much as FIND_WORKSPACE, or none when memory is short.
pub(crate) fn find_workspace(gpu: &Arc<Gpu>) -> (Option<DeviceBuffer>, usize) {
    match DeviceBuffer::alloc(gpu, FIND_WORKSPACE) {
        Ok(b) => (Some(b), FIND_WORKSPACE),
        Err(_) => (None, 0),
    }
}
