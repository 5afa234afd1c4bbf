//! Where a tensor's elements live: host memory, or a device's behind [`DeviceStorage`] (the
//! CUDA runtime's allocations; a build without the `cuda` feature never makes one).

use super::{DType, Device, DeviceStorage};

/// Host memory, one vector per element type.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    BF16(Vec<half::bf16>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::BF16(_) => DType::BF16,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            CpuStorage::F32(v) => v.iter().map(|&x| x as f64).collect(),
            CpuStorage::F64(v) => v.clone(),
            CpuStorage::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
        }
    }
    pub fn from_f64_slice(v: &[f64], dtype: DType) -> Option<Self> {
        Some(match dtype {
            DType::F32 => CpuStorage::F32(v.iter().map(|&x| x as f32).collect()),
            DType::F64 => CpuStorage::F64(v.to_vec()),
            DType::BF16 => CpuStorage::BF16(v.iter().map(|&x| super::bf16_from_f64(x)).collect()),
            DType::F16 => return None,
        })
    }
    pub fn zeros(n: usize, dtype: DType) -> Option<Self> {
        Some(match dtype {
            DType::F32 => CpuStorage::F32(vec![0.0; n]),
            DType::F64 => CpuStorage::F64(vec![0.0; n]),
            DType::BF16 => CpuStorage::BF16(vec![half::bf16::ZERO; n]),
            DType::F16 => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    /// On a device; clones share the allocation (see [`DeviceStorage`]).
    Device(Box<dyn DeviceStorage>),
}

impl Storage {
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Device(s) => s.device(),
        }
    }
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            Storage::Device(s) => s.dtype(),
        }
    }
}
