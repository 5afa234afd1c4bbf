//! In-place SGD on the GPU (kernels/optim.cu): one kernel per parameter instead of the four
//! elementwise ops of the generic optimizer. Weights and velocity are f32 (master weights);
//! the gradient may be f32 or bf16. Multi-tensor LARS and EMA (one launch for all tensors)
//! live in the submodules.

mod device_lr;
mod ema;
mod lars;
mod table;

pub use device_lr::{DeviceLr, LearningRate};
pub use ema::ema_multi_tensor_update;
pub use lars::{lars_multi_tensor_step, LarsSlot, LarsTables};

use crate::cuda::dims::dim;
use crate::cuda::kernels::{self as k, with_dtype, DevPtr, DevPtrMut};
use crate::cuda::module::Launch;
use crate::cuda::storage::gpu_of;
use crate::{DType, Error, Result, Tensor};

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
        Some(v) => DevPtrMut::<f32>::of_mut(v, op)?,
        None => DevPtrMut::null(),
    };
    let wp = DevPtrMut::<f32>::of_mut(w, op)?;
    let n = w.numel();
    if n > 0 {
        let (n64, first) = (dim::<i64>(n, op)?, i32::from(first));
        let (lr, m, wd) = (lr as f32, momentum as f32, weight_decay as f32);
        with_dtype!(g.dtype(), op, T => {
            let gp = DevPtr::<T>::of(g, op)?;
            k::sgd_update(&gpu, Launch::flat(n), wp, gp, v, n64, lr, m, wd, first)
        })?;
    }
    Ok(())
}
