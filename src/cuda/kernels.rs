//! Typed kernel launches. build.rs generates one launcher per kernel family from the parameter
//! lists of `kernels/*.cu` (build/typed_launch.rs, `$OUT_DIR/kernel_launchers.rs`), so a Rust
//! call with the wrong count, order or type of arguments does not compile.
//!
//! Conventions:
//! - A family `<op>_f32` / `<op>_bf16` is launched as `kernels::<op>::<T>(gpu, cfg, ..)` with
//!   `T` = `f32` or `half::bf16` (`KernelDtype`); the kernel id is the family's id + `T::INDEX`.
//!   Call sites holding a run-time dtype pick `T` with `with_dtype!`.
//! - `const P*` parameters take `DevPtr<P>`, `P*` ones `DevPtrMut<P>`. From a tensor these are
//!   built with a dtype check (`DevPtr::of`: a tensor of another dtype is an error, never a
//!   reinterpretation); from a raw buffer only through `unsafe` constructors, whose caller
//!   vouches for what the buffer holds. `null()` is for the parameters a kernel documents as
//!   optional.
//! - Values take their exact Rust type; sizes come from `dims::dim` (checked, never `as`).

use super::device::Gpu;
use super::module::Launch;
use super::storage::{storage, CudaStorage};
use crate::{DType, Error, Result, Tensor};
use std::ffi::c_void;
use std::marker::PhantomData;

/// A kernel symbol and the module (`kernels/<module>.cu`) that defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSym {
    pub module: &'static str,
    pub symbol: &'static str,
}

/// A storage dtype kernels are instantiated for (`FOR_DTYPES` in kernels/common.cuh).
pub trait KernelDtype: Copy + 'static {
    const DTYPE: DType;
    /// The symbol suffix (`add` + `_bf16`).
    const SUFFIX: &'static str;
    /// Offset of this dtype's kernel from its family's first id (build/typed_launch.rs' order).
    const INDEX: usize;
}

impl KernelDtype for f32 {
    const DTYPE: DType = DType::F32;
    const SUFFIX: &'static str = "f32";
    const INDEX: usize = 0;
}

impl KernelDtype for half::bf16 {
    const DTYPE: DType = DType::BF16;
    const SUFFIX: &'static str = "bf16";
    const INDEX: usize = 1;
}

/// The error for a dtype the GPU kernels are not instantiated for.
pub fn unsupported(op: &'static str, dtype: DType) -> Error {
    Error::dtype(
        op,
        format!(
            "the CUDA backend computes in f32 or bf16, not {}",
            dtype.name()
        ),
    )
}

/// Runs `$body` with the type `$T` bound to the Rust type of the run-time dtype `$dtype`
/// (`f32` or `half::bf16`); any other dtype is an error naming `$op`.
macro_rules! with_dtype {
    ($dtype:expr, $op:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
            d => Err($crate::cuda::kernels::unsupported($op, d)),
        }
    };
}
pub(crate) use with_dtype;

fn dtype_check<T: KernelDtype>(t: &Tensor, op: &'static str) -> Result<()> {
    if t.dtype() == T::DTYPE {
        Ok(())
    } else {
        Err(Error::dtype(
            op,
            format!(
                "expected a {} tensor, got {} {:?}",
                T::DTYPE.name(),
                t.dtype().name(),
                t.shape()
            ),
        ))
    }
}

/// A device pointer the kernel only reads (`const P*`).
pub struct DevPtr<P> {
    addr: u64,
    _p: PhantomData<fn() -> P>,
}

/// A device pointer the kernel writes (`P*`).
pub struct DevPtrMut<P> {
    addr: u64,
    _p: PhantomData<fn() -> P>,
}

// Manual impls: the derives would require `P: Copy`, and struct markers are not.
impl<P> Clone for DevPtr<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for DevPtr<P> {}
impl<P> Clone for DevPtrMut<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for DevPtrMut<P> {}

impl<P> DevPtr<P> {
    /// The null pointer, for a parameter the kernel treats as absent.
    pub fn null() -> Self {
        DevPtr {
            addr: 0,
            _p: PhantomData,
        }
    }
    /// # Safety
    /// `addr` is 0 or points at device memory holding `P`s, for as long as kernels use it.
    pub unsafe fn from_raw(addr: u64) -> Self {
        DevPtr {
            addr,
            _p: PhantomData,
        }
    }
    pub fn addr(self) -> u64 {
        self.addr
    }
}

impl<T: KernelDtype> DevPtr<T> {
    /// The elements of `t`, which must be a CUDA tensor of dtype `T`.
    pub fn of(t: &Tensor, op: &'static str) -> Result<Self> {
        dtype_check::<T>(t, op)?;
        Ok(DevPtr {
            addr: storage(t, op)?.ptr(),
            _p: PhantomData,
        })
    }
    /// `of`, or null for `None`.
    pub fn of_opt(t: Option<&Tensor>, op: &'static str) -> Result<Self> {
        t.map_or(Ok(Self::null()), |t| Self::of(t, op))
    }
}

impl<P> DevPtrMut<P> {
    /// The null pointer, for an output the kernel skips when absent.
    pub fn null() -> Self {
        DevPtrMut {
            addr: 0,
            _p: PhantomData,
        }
    }
    /// # Safety
    /// `addr` is 0 or points at device memory with room for the `P`s the kernel writes, which
    /// nothing else reads or writes meanwhile.
    pub unsafe fn from_raw(addr: u64) -> Self {
        DevPtrMut {
            addr,
            _p: PhantomData,
        }
    }
    /// The same memory, for a later kernel that reads it.
    pub fn as_const(self) -> DevPtr<P> {
        DevPtr {
            addr: self.addr,
            _p: PhantomData,
        }
    }
    pub fn addr(self) -> u64 {
        self.addr
    }
}

impl<T: KernelDtype> DevPtrMut<T> {
    /// The elements of `t`, a CUDA tensor of dtype `T` this op has just allocated (its buffer
    /// is shared with no other tensor).
    pub fn of(t: &Tensor, op: &'static str) -> Result<Self> {
        dtype_check::<T>(t, op)?;
        Ok(DevPtrMut {
            addr: storage(t, op)?.ptr(),
            _p: PhantomData,
        })
    }
    /// `of`, or null for `None`.
    pub fn of_opt(t: Option<&Tensor>, op: &'static str) -> Result<Self> {
        t.map_or(Ok(Self::null()), |t| Self::of(t, op))
    }
    /// The elements of `t` for writing in place, copying a shared buffer first.
    pub fn of_mut(t: &mut Tensor, op: &'static str) -> Result<Self> {
        dtype_check::<T>(t, op)?;
        match CudaStorage::of_mut(t.storage_mut()) {
            Some(s) => Ok(DevPtrMut {
                addr: s.ptr_mut()?,
                _p: PhantomData,
            }),
            None => Err(Error::device(op, "expected a CUDA tensor")),
        }
    }
}

/// One launch parameter: the address of the argument's value (`cuLaunchKernel`'s ABI).
fn arg<V>(v: &mut V) -> *mut c_void {
    v as *mut V as *mut c_void
}

/// The generated launchers, kernel table and struct markers.
#[allow(clippy::too_many_arguments)]
mod generated {
    use super::{arg, DevPtr, DevPtrMut, Gpu, KernelDtype, KernelSym, Launch};
    use crate::Result;
    include!(concat!(env!("OUT_DIR"), "/kernel_launchers.rs"));
}
pub use generated::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel a family's launcher picks for `T`.
    fn kernel_of<T: KernelDtype>(family_id: usize) -> KernelSym {
        KERNELS[family_id + T::INDEX]
    }

    #[test]
    fn every_family_holds_its_dtypes_in_index_order() {
        for &(op, id) in FAMILIES {
            let f = kernel_of::<f32>(id);
            assert_eq!(f.symbol, format!("{op}_{}", f32::SUFFIX));
            let bf = kernel_of::<half::bf16>(id);
            assert_eq!(bf.symbol, format!("{op}_{}", half::bf16::SUFFIX));
            assert_eq!(bf.module, f.module);
        }
    }

    #[test]
    fn symbols_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in KERNELS {
            assert!(seen.insert(k.symbol), "{} twice in the table", k.symbol);
        }
    }
}
