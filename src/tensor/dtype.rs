//! Element types and the float trait the CPU kernels are generic over.

use super::storage::CpuStorage;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    BF16,
    F16,
}

impl DType {
    /// Unit roundoff (half the machine epsilon) of the type: the basis of every tolerance we derive.
    pub fn unit_roundoff(self) -> f64 {
        match self {
            DType::F64 => f64::EPSILON / 2.0,
            DType::F32 => f32::EPSILON as f64 / 2.0,
            DType::BF16 => 2f64.powi(-8),
            DType::F16 => 2f64.powi(-11),
        }
    }

    /// The dtype statistics and parameter gradients are kept in for activations of this dtype:
    /// f32 for the 16-bit types (as the GPU kernels do), the dtype itself otherwise.
    pub fn accumulator(self) -> DType {
        match self {
            DType::BF16 | DType::F16 => DType::F32,
            d => d,
        }
    }

    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 => 8,
            DType::F32 => 4,
            DType::BF16 | DType::F16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::BF16 => "bf16",
            DType::F16 => "f16",
        }
    }
}

/// A type a tensor can hold on the CPU.
pub trait Element: Copy + Send + Sync + std::fmt::Debug + Default + 'static {
    const DTYPE: DType;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    fn wrap(v: Vec<Self>) -> CpuStorage;
    fn view(s: &CpuStorage) -> Option<&[Self]>;
    fn view_mut(s: &mut CpuStorage) -> Option<&mut Vec<Self>>;
}

/// The float types the CPU reference computes in (f32 for training, f64 for gradient checks).
pub trait Float:
    Element
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::iter::Sum
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn max(self, o: Self) -> Self;
    fn from_usize(n: usize) -> Self {
        Self::from_f64(n as f64)
    }
    /// C (m×n, strides rsc/csc) = alpha·A (m×k) · B (k×n) + beta·C, any strides.
    ///
    /// # Safety
    /// The pointers with their strides must address valid memory for the given sizes, and `c`
    /// must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! impl_float {
    ($t:ty, $dtype:ident, $gemm:path) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn wrap(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$dtype(v)
            }
            fn view(s: &CpuStorage) -> Option<&[Self]> {
                match s {
                    CpuStorage::$dtype(v) => Some(v),
                    _ => None,
                }
            }
            fn view_mut(s: &mut CpuStorage) -> Option<&mut Vec<Self>> {
                match s {
                    CpuStorage::$dtype(v) => Some(v),
                    _ => None,
                }
            }
        }
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn max(self, o: Self) -> Self {
                <$t>::max(self, o)
            }
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
            }
        }
    };
}

impl_float!(f32, F32, matrixmultiply::sgemm);
impl_float!(f64, F64, matrixmultiply::dgemm);

impl Element for half::bf16 {
    const DTYPE: DType = DType::BF16;
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    fn from_f64(v: f64) -> Self {
        super::bf16_from_f64(v)
    }
    fn wrap(v: Vec<Self>) -> CpuStorage {
        CpuStorage::BF16(v)
    }
    fn view(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::BF16(v) => Some(v),
            _ => None,
        }
    }
    fn view_mut(s: &mut CpuStorage) -> Option<&mut Vec<Self>> {
        match s {
            CpuStorage::BF16(v) => Some(v),
            _ => None,
        }
    }
}
