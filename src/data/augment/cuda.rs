//! SimCLR's pretraining augmentation on the GPU (kernels/augment.cu): decoded u8 RGB images in,
//! normalised f32 or bf16 NHWC views out, every view of a batch in one launch (one block per
//! view). The random parameters are the CPU's (`data::augment::params::draw`), packed into an
//! `AugView` table here; the kernel applies them as `params::apply` does with bilinear
//! resampling, which the parity test (src/data/augment/cuda_tests.rs) holds it to.

use super::params::ViewParams;
use super::{blur, crop, AugmentConfig, Interpolation};
use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::device::{gpu, Gpu};
use crate::cuda::dims::dim;
use crate::cuda::driver::cu;
use crate::cuda::error::CudaCall;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::Launch;
use crate::cuda::storage::empty;
use crate::data::Image;
use crate::{DType, Error, Result, Tensor};
use std::sync::Arc;

const OP: &str = "augment_views";
/// AUG_MAX_KSIZE in kernels/augment.cu: the blur weights' shared array.
const MAX_KSIZE: usize = 512;
/// u32 words per AugView row (88 bytes: an i64, then 20 four-byte fields).
pub(crate) const ROW_WORDS: usize = 22;

fn int(n: usize, what: &'static str) -> Result<u32> {
    let v: i32 = dim(n, what)?;
    Ok(u32::from_ne_bytes(v.to_ne_bytes()))
}

/// One AugView row for view `p` of the image at byte `offset`, decoded at `size` (h, w) from a
/// `full` picture.
pub(crate) fn row(
    p: &ViewParams,
    size: (usize, usize),
    full: (usize, usize),
    offset: usize,
) -> Result<Vec<u32>> {
    let b = crop::map_box(p.crop, full, size);
    let off = dim::<i64>(offset, OP)? as u64;
    let mut r = vec![off as u32, (off >> 32) as u32];
    for n in [size.0, size.1, b.y, b.x, b.h, b.w] {
        r.push(int(n, OP)?);
    }
    let j = p.jitter;
    r.extend([p.flip, j.is_some(), p.gray, p.blur_sigma.is_some()].map(u32::from));
    let (order, params) = j.map_or(([0; 4], [0.0; 4]), |j| (j.order, j.params));
    r.extend(order.map(|o| o as u32));
    r.extend(params.map(f32::to_bits));
    r.push((p.blur_sigma.unwrap_or(1.0) as f32).to_bits());
    r.push(0);
    debug_assert_eq!(r.len(), ROW_WORDS);
    Ok(r)
}

fn upload<T: Copy>(g: &crate::cuda::device::Gpu, data: &[T]) -> Result<DeviceBuffer> {
    let gpu = gpu(g.ordinal)?;
    let buf = DeviceBuffer::alloc(&gpu, std::mem::size_of_val(data))?;
    if !data.is_empty() {
        unsafe { cu::memcpy_htod_async(buf.ptr(), data, gpu.cu_stream()) }
            .call("cuMemcpyHtoDAsync(augment input)")?;
    }
    Ok(buf)
}

/// The blur's kernel side for `cfg`, after checking that the kernel can run it (bilinear
/// resampling, a blur within the shared array).
pub(crate) fn check_config(cfg: &AugmentConfig) -> Result<usize> {
    if cfg.interpolation != Interpolation::Bilinear {
        return Err(Error::Config(
            "GPU augmentation resamples bilinearly; set the interpolation to bilinear".into(),
        ));
    }
    let ksize = blur::kernel_size(cfg.size, cfg.blur_kernel_frac);
    if ksize > MAX_KSIZE {
        return Err(Error::Config(format!(
            "GPU augmentation: blur kernel of {ksize} taps exceeds {MAX_KSIZE}"
        )));
    }
    Ok(ksize)
}

/// The kernel's normalisation constants (means, then stds), or none.
pub(crate) fn norm_constants(cfg: &AugmentConfig) -> Vec<f32> {
    match &cfg.normalize {
        Some(nm) => nm.mean.iter().chain(&nm.std).copied().collect(),
        None => Vec::new(),
    }
}

/// Bytes of f32 work space the kernel needs for `views` views (two images per view).
pub(crate) fn work_bytes(cfg: &AugmentConfig, views: usize) -> usize {
    4 * 2 * cfg.size * cfg.size * 3 * views
}

/// Device addresses of the kernel's inputs: packed u8 sources, `views` AugView rows, the
/// normalisation constants (0: none) and the work space (`work_bytes`).
pub(crate) struct Inputs {
    pub src: u64,
    pub table: u64,
    pub norm: u64,
    pub work: u64,
    pub views: usize,
}

/// One launch for every view: a `[views, size, size, 3]` tensor of `dtype`, on the stream.
///
/// # Safety
/// The addresses hold what [`Inputs`] says until the launch has run (stream order).
pub(crate) unsafe fn launch(
    g: &Arc<Gpu>,
    cfg: &AugmentConfig,
    ksize: usize,
    inp: &Inputs,
    dtype: DType,
) -> Result<Tensor> {
    let out = empty(g, &[inp.views, cfg.size, cfg.size, 3], dtype)?;
    if inp.views == 0 {
        return Ok(out);
    }
    let (size, ks) = (dim::<i32>(cfg.size, OP)?, dim::<i32>(ksize, OP)?);
    let (srcp, tabp, workp, normp) = (
        DevPtr::<u8>::from_raw(inp.src),
        DevPtr::<k::AugView>::from_raw(inp.table),
        DevPtrMut::<f32>::from_raw(inp.work),
        if inp.norm == 0 {
            DevPtr::<f32>::null()
        } else {
            DevPtr::<f32>::from_raw(inp.norm)
        },
    );
    let cfgl = Launch::rows(inp.views, 256);
    with_dtype!(dtype, OP, T => {
        let o = DevPtrMut::<T>::of(&out, OP)?;
        k::augment_views::<T>(g, cfgl, srcp, tabp, o, workp, size, ks, normp)
    })?;
    Ok(out)
}

/// Augments `views` (image index into `images`, its full picture size, its parameters) on
/// CUDA device `ordinal`: a `[views, size, size, 3]` tensor of `dtype`. Only 3-channel images
/// and bilinear resampling (`cfg.interpolation`). Uploads from pageable memory and waits: the
/// training path is `data::gpu_input`.
pub fn augment_views(
    ordinal: usize,
    cfg: &AugmentConfig,
    images: &[Image],
    views: &[(usize, (usize, usize), ViewParams)],
    dtype: DType,
) -> Result<Tensor> {
    let ksize = check_config(cfg)?;
    let g = gpu(ordinal)?;
    let (mut bytes, mut offsets) = (Vec::new(), Vec::new());
    for img in images {
        img.check()?;
        if img.channels != 3 {
            return Err(Error::Config(format!(
                "GPU augmentation takes RGB images, got {} channels",
                img.channels
            )));
        }
        offsets.push(bytes.len());
        bytes.extend_from_slice(&img.data);
    }
    let mut table = Vec::with_capacity(views.len() * ROW_WORDS);
    for (i, full, p) in views {
        let img = images
            .get(*i)
            .ok_or_else(|| Error::Config(format!("view names image {i} of {}", images.len())))?;
        table.extend(row(p, (img.height, img.width), *full, offsets[*i])?);
    }
    let norm = norm_constants(cfg);
    let (src, tab) = (upload(&g, &bytes)?, upload(&g, &table)?);
    let normb = upload(&g, &norm)?;
    let work = DeviceBuffer::alloc(&g, work_bytes(cfg, views.len()))?;
    let inp = Inputs {
        src: src.ptr(),
        table: tab.ptr(),
        norm: if norm.is_empty() { 0 } else { normb.ptr() },
        work: work.ptr(),
        views: views.len(),
    };
    // The buffers hold what the kernel's parameters say.
    let out = unsafe { launch(&g, cfg, ksize, &inp, dtype)? };
    // The host vectors above are dropped on return; the copies must be done by then.
    g.synchronize()?;
    Ok(out)
}
