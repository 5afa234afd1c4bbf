//! Concatenation and slicing along the last dimension (kernels/channels.cu).

use super::ChannelsKernels;
use crate::cuda::dims::dim;
use crate::cuda::groups::{group_launch_w, TARGET_THREADS};
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::storage::{empty, gpu_of};
use crate::ops::backend::Cuda;
use crate::{Result, Tensor};

/// The channel-group launch copying `len` columns of `rows` rows, 8 per thread when `w8`:
/// (launch, lanes).
fn launch(
    rows: usize,
    len: usize,
    w8: bool,
    op: &'static str,
) -> Result<(crate::cuda::module::Launch, i64)> {
    let (cfg, lanes) = group_launch_w(rows, len, if w8 { 8 } else { 1 }, TARGET_THREADS);
    Ok((cfg, dim::<i64>(lanes, op)?))
}

impl ChannelsKernels for Cuda {
    fn concat_forward(xs: &[&Tensor]) -> Result<Tensor> {
        let op = "concat_channels";
        let gpu = gpu_of(xs[0], op)?;
        let mut shape = xs[0].shape().to_vec();
        let total: usize = xs.iter().map(|x| x.last_dim()).sum();
        let rows = xs[0].numel() / xs[0].last_dim().max(1);
        *shape.last_mut().unwrap_or(&mut 0) = total;
        let y = empty(&gpu, &shape, xs[0].dtype())?;
        let (total32, rows64) = (dim::<i32>(total, op)?, dim::<i64>(rows, op)?);
        let mut off = 0;
        for x in xs {
            let c = x.last_dim();
            if rows * c > 0 {
                let (c32, off32) = (dim::<i32>(c, op)?, dim::<i32>(off, op)?);
                with_dtype!(x.dtype(), op, T => {
                    let (src, dst) = (DevPtr::<T>::of(x, op)?, DevPtrMut::of(&y, op)?);
                    let w8 = [c, total, off].iter().all(|v| v % 8 == 0);
                    let (cfg, lanes) = launch(rows, c, w8, op)?;
                    k::concat_channels(&gpu, cfg, src, c32, dst, total32, off32, rows64, lanes, i32::from(w8))
                })?;
            }
            off += c;
        }
        Ok(y)
    }

    fn narrow_forward(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
        let op = "narrow_channels";
        let gpu = gpu_of(x, op)?;
        let c = x.last_dim();
        let rows = x.numel() / c.max(1);
        let mut shape = x.shape().to_vec();
        *shape.last_mut().unwrap_or(&mut 0) = len;
        let y = empty(&gpu, &shape, x.dtype())?;
        if rows * len > 0 {
            let (c32, start32, len32) = (
                dim::<i32>(c, op)?,
                dim::<i32>(start, op)?,
                dim::<i32>(len, op)?,
            );
            let rows64 = dim::<i64>(rows, op)?;
            with_dtype!(x.dtype(), op, T => {
                let (src, dst) = (DevPtr::<T>::of(x, op)?, DevPtrMut::of(&y, op)?);
                let w8 = [c, start, len].iter().all(|v| v % 8 == 0);
                let (cfg, lanes) = launch(rows, len, w8, op)?;
                k::narrow_channels(&gpu, cfg, src, c32, start32, dst, len32, rows64, lanes, i32::from(w8))
            })?;
        }
        Ok(y)
    }
}
