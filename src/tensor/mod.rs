//! Tensors: a shape, and a reference-counted storage on one device.
//!
//! Tensors are immutable values; ops make new ones. Cloning is cheap (the storage is shared).
//! Activations are NHWC, the layout the GPU path uses; linear weights are [out, in] and conv
//! weights [out, kh, kw, in/groups] (cuDNN's KRSC for NHWC).

#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
mod device;
mod device_storage;
mod dtype;
pub mod memory;
mod round;
mod storage;

pub use device::{Device, DeviceRequest};
use device_storage::runtime;
pub use device_storage::{register_runtime, DeviceRuntime, DeviceStorage};
pub use dtype::{DType, Element, Float};
pub use round::{bf16_from_f64, f16_from_f64};
pub use storage::{CpuStorage, Storage};

use crate::{Error, Result};
use std::fmt;
use std::sync::Arc;

#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    /// Shared by clones and views; counted in [`memory`] while any tensor holds it.
    storage: Arc<memory::Counted>,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor({:?}, {}, {})",
            self.shape,
            self.dtype().name(),
            self.device()
        )
    }
}

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    pub fn from_storage(storage: Storage, shape: &[usize]) -> Self {
        Tensor {
            shape: shape.to_vec(),
            storage: Arc::new(memory::Counted::new(storage)),
        }
    }

    /// A CPU tensor from a vector; errors when the length does not match the shape.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Self> {
        if data.len() != numel(shape) {
            return Err(Error::shape(
                "tensor",
                format!(
                    "{} elements do not fill shape {:?} ({} elements)",
                    data.len(),
                    shape,
                    numel(shape)
                ),
            ));
        }
        Ok(Tensor::from_storage(Storage::Cpu(T::wrap(data)), shape))
    }

    pub fn from_f64(data: &[f64], shape: &[usize], dtype: DType) -> Result<Self> {
        if data.len() != numel(shape) {
            return Err(Error::shape(
                "tensor",
                format!("{} elements for shape {:?}", data.len(), shape),
            ));
        }
        let s = CpuStorage::from_f64_slice(data, dtype).ok_or_else(|| {
            Error::dtype("tensor", format!("no CPU storage for {}", dtype.name()))
        })?;
        Ok(Tensor::from_storage(Storage::Cpu(s), shape))
    }

    pub fn scalar(v: f64, dtype: DType) -> Result<Self> {
        Tensor::from_f64(&[v], &[], dtype)
    }

    pub fn zeros(shape: &[usize], dtype: DType, device: Device) -> Result<Self> {
        match device {
            Device::Cpu => {
                let s = CpuStorage::zeros(numel(shape), dtype).ok_or_else(|| {
                    Error::dtype("zeros", format!("no CPU storage for {}", dtype.name()))
                })?;
                Ok(Tensor::from_storage(Storage::Cpu(s), shape))
            }
            // Filled on the device: no upload, no wait.
            Device::Cuda(i) => runtime("zeros")?.full(shape, 0.0, dtype, i),
        }
    }

    pub fn full(shape: &[usize], v: f64, dtype: DType, device: Device) -> Result<Self> {
        // On a GPU: filled there (no upload, no wait), same bits as the CPU's rounding.
        if let Device::Cuda(i) = device {
            return runtime("full")?.full(shape, v, dtype, i);
        }
        Tensor::from_f64(&vec![v; numel(shape)], shape, dtype)?.to_device(device)
    }

    /// Normal(0, std²) entries from `rng`, on the CPU.
    pub fn randn(shape: &[usize], std: f64, dtype: DType, rng: &mut crate::Rng) -> Result<Self> {
        let v: Vec<f64> = (0..numel(shape)).map(|_| rng.normal() * std).collect();
        Tensor::from_f64(&v, shape, dtype)
    }

    /// Uniform [lo, hi) entries from `rng`, on the CPU.
    pub fn rand_uniform(
        shape: &[usize],
        lo: f64,
        hi: f64,
        dtype: DType,
        rng: &mut crate::Rng,
    ) -> Result<Self> {
        let v: Vec<f64> = (0..numel(shape)).map(|_| rng.range(lo, hi)).collect();
        Tensor::from_f64(&v, shape, dtype)
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }
    pub fn dtype(&self) -> DType {
        self.storage.storage.dtype()
    }
    pub fn device(&self) -> Device {
        self.storage.storage.device()
    }
    pub fn storage(&self) -> &Storage {
        &self.storage.storage
    }

    /// Mutable access to the storage, copying it first if it is shared (optimizer updates).
    pub fn storage_mut(&mut self) -> &mut Storage {
        &mut Arc::make_mut(&mut self.storage).storage
    }

    /// The last dimension (channels in NHWC, features in [N, C]).
    pub fn last_dim(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    /// An NHWC tensor's four dimensions.
    pub fn dims4(&self, op: &'static str) -> Result<(usize, usize, usize, usize)> {
        match self.shape[..] {
            [n, h, w, c] => Ok((n, h, w, c)),
            _ => Err(Error::shape(
                op,
                format!(
                    "expected an NHWC tensor of rank 4, got shape {:?}",
                    self.shape
                ),
            )),
        }
    }

    pub fn dims2(&self, op: &'static str) -> Result<(usize, usize)> {
        match self.shape[..] {
            [a, b] => Ok((a, b)),
            _ => Err(Error::shape(
                op,
                format!("expected a matrix of rank 2, got shape {:?}", self.shape),
            )),
        }
    }

    /// Same elements, new shape (no copy).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "cannot view {:?} ({} elements) as {:?}",
                    self.shape,
                    self.numel(),
                    shape
                ),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            storage: self.storage.clone(),
        })
    }

    /// The host slice of a CPU tensor of element type `T`.
    pub fn cpu_slice<T: Element>(&self, op: &'static str) -> Result<&[T]> {
        match &self.storage.storage {
            Storage::Cpu(s) => T::view(s).ok_or_else(|| {
                Error::dtype(
                    op,
                    format!(
                        "expected {} data, got {}",
                        T::DTYPE.name(),
                        s.dtype().name()
                    ),
                )
            }),
            Storage::Device(_) => Err(Error::device(
                op,
                format!("expected a CPU tensor, got one on {}", self.device()),
            )),
        }
    }

    /// Mutable host vector of a CPU tensor (copy-on-write when shared).
    pub fn cpu_vec_mut<T: Element>(&mut self, op: &'static str) -> Result<&mut Vec<T>> {
        let dev = self.device();
        match &mut Arc::make_mut(&mut self.storage).storage {
            Storage::Cpu(s) => {
                let dt = s.dtype();
                T::view_mut(s).ok_or_else(|| {
                    Error::dtype(
                        op,
                        format!("expected {} data, got {}", T::DTYPE.name(), dt.name()),
                    )
                })
            }
            Storage::Device(_) => Err(Error::device(
                op,
                format!("expected a CPU tensor, got one on {dev}"),
            )),
        }
    }

    /// All elements as f64 on the host (copies from the GPU when needed).
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        match &self.storage.storage {
            Storage::Cpu(s) => Ok(s.to_f64_vec()),
            Storage::Device(s) => Ok(s.to_cpu()?.to_f64_vec()),
        }
    }

    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        Ok(self.to_vec_f64()?.into_iter().map(|x| x as f32).collect())
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::shape(
                "item",
                format!("expected one element, got shape {:?}", self.shape),
            ));
        }
        Ok(self.to_vec_f64()?[0])
    }

    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        match self.device() {
            Device::Cpu => Tensor::from_f64(&self.to_vec_f64()?, &self.shape, dtype),
            Device::Cuda(_) => runtime("to_dtype")?.cast(self, dtype),
        }
    }

    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        match device {
            Device::Cpu => Tensor::from_f64(&self.to_vec_f64()?, &self.shape, self.dtype()),
            Device::Cuda(i) => runtime("to_device")?.upload(self, i),
        }
    }
}

/// Checks that all operands share a device and a dtype; returns them.
pub fn same_device_dtype(op: &'static str, ts: &[&Tensor]) -> Result<(Device, DType)> {
    let (d, t) = (ts[0].device(), ts[0].dtype());
    for x in &ts[1..] {
        if x.device() != d {
            return Err(Error::device(
                op,
                format!("operands on {} and {}", d, x.device()),
            ));
        }
        if x.dtype() != t {
            return Err(Error::dtype(
                op,
                format!("operands of dtype {} and {}", t.name(), x.dtype().name()),
            ));
        }
    }
    Ok((d, t))
}

/// Runs a generic CPU kernel at the tensor's float type: `float_dispatch!(op, dtype, path::f(args))`.
#[macro_export]
macro_rules! float_dispatch {
    ($op:expr, $dtype:expr, $($f:ident)::+ ( $($arg:expr),* $(,)? )) => {
        match $dtype {
            $crate::DType::F32 => $($f)::+::<f32>($($arg),*),
            $crate::DType::F64 => $($f)::+::<f64>($($arg),*),
            d => Err($crate::Error::dtype(
                $op,
                format!("the CPU backend computes in f32 or f64, not {}", d.name()),
            )),
        }
    };
}
