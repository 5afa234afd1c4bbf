//! GPU tensor storage and host transfers. The GPU holds f32 and bf16 only: uploading an f64 or
//! f16 CPU tensor is an error that says to convert it first (silently narrowing f64 would make
//! a tensor's dtype depend on its device).

use super::alloc::DeviceBuffer;
use super::device::{gpu, Gpu};
use super::dims::dim;
use super::driver::cu;
use super::error::CudaCall;
use super::kernels::{self as k, DevPtr, DevPtrMut};
use super::module::Launch;
use crate::tensor::{CpuStorage, DeviceStorage, Storage};
use crate::{DType, Device, Error, Result, Tensor};
use std::any::Any;
use std::sync::Arc;

/// A tensor's elements on one GPU. Clones share the buffer; writers go through `ptr_mut`,
/// which copies a shared buffer first.
#[derive(Clone)]
pub struct CudaStorage {
    buf: Arc<DeviceBuffer>,
    dtype: DType,
    len: usize,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaStorage(cuda:{}, {} x {})",
            self.ordinal(),
            self.len,
            self.dtype.name()
        )
    }
}

fn check_dtype(op: &'static str, dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::BF16 => Ok(()),
        d => Err(Error::dtype(
            op,
            format!(
                "the CUDA backend stores f32 and bf16, not {} (convert with to_dtype first)",
                d.name()
            ),
        )),
    }
}

impl CudaStorage {
    /// Uninitialised storage for `len` elements.
    pub fn alloc(gpu: &Arc<Gpu>, dtype: DType, len: usize) -> Result<Self> {
        check_dtype("cuda alloc", dtype)?;
        Ok(CudaStorage {
            buf: Arc::new(DeviceBuffer::alloc(gpu, len * dtype.size_in_bytes())?),
            dtype,
            len,
        })
    }
    pub fn zeros(gpu: &Arc<Gpu>, dtype: DType, len: usize) -> Result<Self> {
        check_dtype("cuda zeros", dtype)?;
        Ok(CudaStorage {
            buf: Arc::new(DeviceBuffer::zeroed(gpu, len * dtype.size_in_bytes())?),
            dtype,
            len,
        })
    }
    pub fn ordinal(&self) -> usize {
        self.buf.gpu().ordinal
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn gpu(&self) -> &Arc<Gpu> {
        self.buf.gpu()
    }
    pub fn ptr(&self) -> cu::CUdeviceptr {
        self.buf.ptr()
    }

    /// A pointer for writing in place, copying the buffer first if another tensor shares it.
    pub fn ptr_mut(&mut self) -> Result<cu::CUdeviceptr> {
        if Arc::get_mut(&mut self.buf).is_none() {
            let gpu = self.gpu().clone();
            let copy = DeviceBuffer::alloc(&gpu, self.buf.bytes())?;
            unsafe {
                cu::memcpy_dtod_async(copy.ptr(), self.ptr(), self.buf.bytes(), gpu.cu_stream())
            }
            .call("cuMemcpyDtoDAsync")?;
            self.buf = Arc::new(copy);
        }
        Ok(self.ptr())
    }

    /// Copies `src` (same dtype and length) into this buffer where it is, even when shared:
    /// the write a captured step makes to keep an address the graph reads fixed.
    pub fn overwrite_with(&self, src: &CudaStorage) -> Result<bool> {
        if src.dtype != self.dtype || src.len != self.len || !Arc::ptr_eq(src.gpu(), self.gpu()) {
            return Ok(false);
        }
        unsafe {
            cu::memcpy_dtod_async(
                self.ptr(),
                src.ptr(),
                self.buf.bytes(),
                self.gpu().cu_stream(),
            )
        }
        .call("cuMemcpyDtoDAsync")?;
        Ok(true)
    }

    /// Copies to the host (waits for the device's stream) as a CPU storage.
    pub fn to_cpu(&self) -> Result<CpuStorage> {
        let gpu = gpu(self.ordinal())?;
        let s = gpu.cu_stream();
        let out = match self.dtype {
            DType::F32 => {
                let mut v = vec![0f32; self.len];
                unsafe { cu::memcpy_dtoh_async(&mut v, self.ptr(), s) }
                    .call("cuMemcpyDtoHAsync")?;
                gpu.synchronize()?;
                CpuStorage::F32(v)
            }
            DType::BF16 => {
                let mut v = vec![half::bf16::ZERO; self.len];
                unsafe { cu::memcpy_dtoh_async(&mut v, self.ptr(), s) }
                    .call("cuMemcpyDtoHAsync")?;
                gpu.synchronize()?;
                CpuStorage::BF16(v)
            }
            d => {
                return Err(Error::dtype(
                    "download",
                    format!("no GPU storage of {}", d.name()),
                ))
            }
        };
        Ok(out)
    }

    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        Ok(self.to_cpu()?.to_f64_vec())
    }

    /// The CUDA storage a tensor's storage holds, if it holds one.
    pub fn of(s: &Storage) -> Option<&CudaStorage> {
        match s {
            Storage::Device(d) => d.as_any().downcast_ref(),
            Storage::Cpu(_) => None,
        }
    }

    /// `of`, for writing (through `ptr_mut`, which copies a shared buffer first).
    pub fn of_mut(s: &mut Storage) -> Option<&mut CudaStorage> {
        match s {
            Storage::Device(d) => d.as_any_mut().downcast_mut(),
            Storage::Cpu(_) => None,
        }
    }
}

/// How the tensor sees a GPU allocation. A clone shares the buffer, as `CudaStorage`'s own.
impl DeviceStorage for CudaStorage {
    fn device(&self) -> Device {
        Device::Cuda(self.ordinal())
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn len(&self) -> usize {
        self.len
    }
    fn to_cpu(&self) -> Result<CpuStorage> {
        CudaStorage::to_cpu(self)
    }
    fn clone_box(&self) -> Box<dyn DeviceStorage> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl From<CudaStorage> for Storage {
    fn from(s: CudaStorage) -> Self {
        Storage::Device(Box::new(s))
    }
}

/// The GPU storage of a tensor (after the dispatcher has checked its device).
pub fn storage<'a>(t: &'a Tensor, op: &'static str) -> Result<&'a CudaStorage> {
    CudaStorage::of(t.storage()).ok_or_else(|| {
        Error::device(
            op,
            format!("expected a CUDA tensor, got one on {}", t.device()),
        )
    })
}

/// The device of the first operand, bound to this thread.
pub fn gpu_of(t: &Tensor, op: &'static str) -> Result<Arc<Gpu>> {
    gpu(storage(t, op)?.ordinal())
}

/// A new uninitialised tensor on `gpu`.
pub fn empty(gpu: &Arc<Gpu>, shape: &[usize], dtype: DType) -> Result<Tensor> {
    let s = CudaStorage::alloc(gpu, dtype, shape.iter().product())?;
    Ok(Tensor::from_storage(s.into(), shape))
}

pub fn zeros(gpu: &Arc<Gpu>, shape: &[usize], dtype: DType) -> Result<Tensor> {
    let s = CudaStorage::zeros(gpu, dtype, shape.iter().product())?;
    Ok(Tensor::from_storage(s.into(), shape))
}

/// Copies a tensor to GPU `ordinal`, keeping its dtype (f32 or bf16).
pub fn upload(t: &Tensor, ordinal: usize) -> Result<Tensor> {
    let cpu = match t.storage() {
        Storage::Cpu(s) => s.clone(),
        Storage::Device(s) if s.device() == Device::Cuda(ordinal) => return Ok(t.clone()),
        Storage::Device(s) => s.to_cpu()?,
    };
    check_dtype("to_device", cpu.dtype())?;
    let gpu = gpu(ordinal)?;
    let dst = CudaStorage::alloc(&gpu, cpu.dtype(), cpu.len())?;
    let s = gpu.cu_stream();
    match &cpu {
        CpuStorage::F32(v) => unsafe { cu::memcpy_htod_async(dst.ptr(), v, s) },
        CpuStorage::BF16(v) => unsafe { cu::memcpy_htod_async(dst.ptr(), v, s) },
        CpuStorage::F64(_) => return Err(Error::dtype("to_device", "f64 cannot be uploaded")),
    }
    .call("cuMemcpyHtoDAsync")?;
    // The host vector must outlive the copy.
    gpu.synchronize()?;
    Ok(Tensor::from_storage(dst.into(), t.shape()))
}

/// Converts a GPU tensor between f32 and bf16 on the device.
pub fn cast(t: &Tensor, dtype: DType) -> Result<Tensor> {
    let from = t.dtype();
    if from == dtype {
        return Ok(t.clone());
    }
    let op = "to_dtype";
    match (from, dtype) {
        (DType::F32, DType::BF16) | (DType::BF16, DType::F32) => {}
        _ => {
            return Err(Error::dtype(
                "to_dtype",
                format!(
                    "the CUDA backend converts between f32 and bf16, not {} to {} (move to the CPU first)",
                    from.name(),
                    dtype.name()
                ),
            ))
        }
    }
    let gpu = gpu_of(t, op)?;
    let y = empty(&gpu, t.shape(), dtype)?;
    let n = t.numel();
    if n > 0 {
        let (cfg, n64) = (Launch::flat8(n), dim::<i64>(n, op)?);
        if from == DType::F32 {
            let (x, y) = (DevPtr::of(t, op)?, DevPtrMut::of(&y, op)?);
            k::cast_f32_to_bf16(&gpu, cfg, x, y, n64)?;
        } else {
            let (x, y) = (DevPtr::of(t, op)?, DevPtrMut::of(&y, op)?);
            k::cast_bf16_to_f32(&gpu, cfg, x, y, n64)?;
        }
    }
    Ok(y)
}

/// Copies CUDA tensor `src` into CUDA tensor `dst`'s buffer where it is (same dtype, length
/// and device); `false`, copying nothing, when they differ or either is not on a GPU. A step
/// replayed as a CUDA graph reads and writes fixed addresses: this keeps them fixed.
pub fn overwrite(dst: &Tensor, src: &Tensor) -> Result<bool> {
    match (
        CudaStorage::of(dst.storage()),
        CudaStorage::of(src.storage()),
    ) {
        (Some(d), Some(s)) => d.overwrite_with(s),
        _ => Ok(false),
    }
}
