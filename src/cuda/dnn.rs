//! The device's cuDNN state: the handle on the device's stream and, per convolution (dtype,
//! `--conv-algorithms` policy and geometry) and direction, the algorithm chosen by cuDNN's measured search and kept on disk
//! by conv_algo.rs. The convolutions themselves are the op's launcher
//! (src/ops/conv2d/cuda.rs).

use super::alloc::DeviceBuffer;
use super::conv_algo::{Chosen, DiskChoices};
use super::device::Gpu;
use super::driver::cudnn::{self as dnn, *};
use super::error::{cuda_err, CudaCall};
use crate::conv_policy::{ChoiceSummary, ConvAlgorithms};
use crate::{DType, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// Workspace offered to the algorithm search; algorithms needing more are not considered.
const FIND_WORKSPACE: usize = 256 << 20;

/// A convolution's dtype, algorithm policy and geometry (the op's launcher builds it).
pub(crate) type Key = (DType, ConvAlgorithms, [usize; 16]);

pub struct Dnn {
    pub(crate) handle: cudnnHandle_t,
    pub(crate) fwd: HashMap<Key, Chosen<cudnnConvolutionFwdAlgo_t>>,
    pub(crate) bwd_data: HashMap<Key, Chosen<cudnnConvolutionBwdDataAlgo_t>>,
    pub(crate) bwd_filter: HashMap<Key, Chosen<cudnnConvolutionBwdFilterAlgo_t>>,
    pub(crate) disk: DiskChoices,
    /// The convolutions run since the last `mark_choices` (direction name and key) and how
    /// often each ran, for the summary of what their choices cost.
    pub(crate) ran: HashMap<(&'static str, Key), u64>,
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
            ran: HashMap::new(),
        })
    }
}

/// Runs `f` with the device's cuDNN state, creating it on first use.
pub(crate) fn with_dnn<R>(gpu: &Arc<Gpu>, f: impl FnOnce(&mut Dnn) -> Result<R>) -> Result<R> {
    let mut guard = gpu
        .dnn
        .lock()
        .map_err(|_| cuda_err("cuDNN handle poisoned"))?;
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
    let guard = gpu
        .dnn
        .lock()
        .map_err(|_| cuda_err("cuDNN handle poisoned"))?;
    Ok(guard.as_ref().map(|d| d.disk.summary(policy, d.ran.iter())))
}

/// Starts a new summary: the convolutions run so far (memory-plan probes, say) leave it.
pub(crate) fn mark_choices(gpu: &Arc<Gpu>) -> Result<()> {
    let mut guard = gpu
        .dnn
        .lock()
        .map_err(|_| cuda_err("cuDNN handle poisoned"))?;
    if let Some(d) = guard.as_mut() {
        d.ran.clear();
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
