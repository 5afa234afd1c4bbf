//! In-place SGD on the GPU (kernels/optim.cu): one kernel per parameter instead of the four
//! elementwise ops of the generic optimizer. Weights and velocity are f32 (master weights);
//! the gradient may be f32 or bf16. Multi-tensor LARS and EMA (one launch for all tensors)
//! live in the submodules.

mod ema;
mod lars;
mod table;

pub use ema::ema_multi_tensor_update;
pub use lars::{lars_multi_tensor_step, LarsSlot};

use super::module::{Arg, Launch};
use super::ops::i64a;
use super::storage::{gpu_of, ptr};
use crate::tensor::Storage;
use crate::{DType, Error, Result, Tensor};

fn ptr_mut(t: &mut Tensor, op: &'static str) -> Result<Arg> {
    match t.storage_mut() {
        Storage::Cuda(s) => Ok(Arg::Ptr(s.ptr_mut()?)),
        _ => Err(Error::device(op, "expected a CUDA tensor")),
    }
}

/// w ← w − lr·v with v ← momentum·v + (g + wd·w) (v ← g + wd·w on the first step, `first`).
/// Without momentum pass `velocity: None`.
pub fn sgd_update(
    w: &mut Tensor,
    g: &Tensor,
    velocity: Option<&mut Tensor>,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    first: bool,
) -> Result<()> {
    let op = "sgd_update";
    if w.dtype() != DType::F32 || w.shape() != g.shape() {
        return Err(Error::shape(
            op,
            format!("f32 weight {:?} for gradient {:?}", w.shape(), g.shape()),
        ));
    }
    let gpu = gpu_of(g, op)?;
    let v = match velocity {
        Some(v) => ptr_mut(v, op)?,
        None => Arg::Ptr(0),
    };
    let wp = ptr_mut(w, op)?;
    let n = w.numel();
    if n > 0 {
        let args = [
            wp,
            ptr(g, op)?,
            v,
            i64a(n),
            Arg::F32(lr as f32),
            Arg::F32(momentum as f32),
            Arg::F32(weight_decay as f32),
            Arg::I32(first as i32),
        ];
        gpu.launch_typed(op, g.dtype(), Launch::flat(n), &args)?;
    }
    Ok(())
}
