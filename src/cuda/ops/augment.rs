//! SimCLR's pretraining augmentation on the GPU (kernels/augment.cu): decoded u8 RGB images in,
//! normalised f32 or bf16 NHWC views out, every view of a batch in one launch (one block per
//! view). The random parameters are the CPU's (`data::augment::params::draw`), packed into an
//! `AugView` table here; the kernel applies them as `params::apply` does with bilinear
//! resampling, which the parity test (tests/cuda_parity_augment.rs) holds it to.

use crate::cuda::alloc::DeviceBuffer;
use crate::cuda::device::gpu;
use crate::cuda::dims::dim;
use crate::cuda::driver::cu;
use crate::cuda::error::CudaCall;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::Launch;
use crate::cuda::storage::empty;
use crate::data::augment::params::ViewParams;
use crate::data::augment::{blur, crop, AugmentConfig, Interpolation};
use crate::data::Image;
use crate::{DType, Error, Result, Tensor};

const OP: &str = "augment_views";
/// AUG_MAX_KSIZE in kernels/augment.cu: the blur weights' shared array.
const MAX_KSIZE: usize = 512;
/// u32 words per AugView row (88 bytes: an i64, then 20 four-byte fields).
const ROW_WORDS: usize = 22;

fn int(n: usize, what: &'static str) -> Result<u32> {
    let v: i32 = dim(n, what)?;
    Ok(u32::from_ne_bytes(v.to_ne_bytes()))
}

/// One AugView row for view `p` of the image at byte `offset`, decoded from a `full` picture.
fn row(p: &ViewParams, img: &Image, full: (usize, usize), offset: usize) -> Result<Vec<u32>> {
    let b = crop::map_box(p.crop, full, (img.height, img.width));
    let off = dim::<i64>(offset, OP)? as u64;
    let mut r = vec![off as u32, (off >> 32) as u32];
    for n in [img.height, img.width, b.y, b.x, b.h, b.w] {
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

/// Augments `views` (image index into `images`, its full picture size, its parameters) on
/// CUDA device `ordinal`: a `[views, size, size, 3]` tensor of `dtype`. Only 3-channel images
/// and bilinear resampling (`cfg.interpolation`).
pub fn augment_views(
    ordinal: usize,
    cfg: &AugmentConfig,
    images: &[Image],
    views: &[(usize, (usize, usize), ViewParams)],
    dtype: DType,
) -> Result<Tensor> {
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
        table.extend(row(p, img, *full, offsets[*i])?);
    }
    let n = cfg.size * cfg.size * 3;
    let out = empty(&g, &[views.len(), cfg.size, cfg.size, 3], dtype)?;
    if views.is_empty() {
        return Ok(out);
    }
    let norm: Vec<f32> = match &cfg.normalize {
        Some(nm) => nm.mean.iter().chain(&nm.std).copied().collect(),
        None => Vec::new(),
    };
    let (src, tab) = (upload(&g, &bytes)?, upload(&g, &table)?);
    let normb = upload(&g, &norm)?;
    let work = DeviceBuffer::alloc(&g, 4 * 2 * n * views.len())?;
    let (size, ks) = (dim::<i32>(cfg.size, OP)?, dim::<i32>(ksize, OP)?);
    // The buffers hold what the kernel's parameters say: packed u8 images, AugView rows,
    // f32 work images of two per view, and six f32 normalisation constants (or none).
    let (srcp, tabp, workp, normp) = unsafe {
        (
            DevPtr::<u8>::from_raw(src.ptr()),
            DevPtr::<k::AugView>::from_raw(tab.ptr()),
            DevPtrMut::<f32>::from_raw(work.ptr()),
            if norm.is_empty() {
                DevPtr::<f32>::null()
            } else {
                DevPtr::<f32>::from_raw(normb.ptr())
            },
        )
    };
    let cfgl = Launch::rows(views.len(), 256);
    with_dtype!(dtype, OP, T => {
        let o = DevPtrMut::<T>::of(&out, OP)?;
        k::augment_views::<T>(&g, cfgl, srcp, tabp, o, workp, size, ks, normp)
    })?;
    // The host vectors above are dropped on return; the copies must be done by then.
    g.synchronize()?;
    Ok(out)
}
