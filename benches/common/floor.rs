//! The floor model: a case's compulsory work (FLOPs and bytes moved to and from memory) and the
//! machine's ceilings; the floor is the larger of the FLOP time and the byte time.

use simclr::ops::matmul::matmul_forward;
use simclr::{DType, Device, Result, Tensor};
use std::sync::OnceLock;
use std::time::Instant;

/// One H100 SXM as measured (/work/shared/PERFORMANCE.md): an 8192³ bf16 GEMM and a
/// device-to-device copy counting bytes read and written.
pub const H100_BF16_FLOPS: f64 = 800e12;
pub const H100_BYTES_PER_S: f64 = 3.0e12;

#[derive(Clone, Debug)]
pub struct Ceilings {
    pub flops: f64,
    pub bytes_per_s: f64,
    pub source: String,
}

/// The ceilings the floor of a case on `device` is measured against.
pub fn ceilings(device: Device) -> &'static Ceilings {
    static CUDA: OnceLock<Ceilings> = OnceLock::new();
    static CPU: OnceLock<Ceilings> = OnceLock::new();
    match device {
        Device::Cuda(_) => CUDA.get_or_init(|| Ceilings {
            flops: H100_BF16_FLOPS,
            bytes_per_s: H100_BYTES_PER_S,
            source: "H100 measured: 800 TFLOP/s bf16 dense, 3.0 TB/s".into(),
        }),
        Device::Cpu => CPU.get_or_init(measure_cpu),
    }
}

/// A CPU has no published figure here, so measure two rough ones once per process: the best of
/// a few 64 MiB copies, and the best of a few 512³ f32 products through our GEMM.
fn measure_cpu() -> Ceilings {
    let n = 16 << 20;
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let mut copy = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        dst.copy_from_slice(std::hint::black_box(&src));
        copy = copy.min(t.elapsed().as_secs_f64());
        std::hint::black_box(&dst);
    }
    let gemm = cpu_gemm_seconds(512).unwrap_or(f64::INFINITY);
    let bytes_per_s = 2.0 * (n * 4) as f64 / copy;
    let flops = 2.0 * 512f64.powi(3) / gemm;
    Ceilings {
        flops,
        bytes_per_s,
        source: format!(
            "this CPU, measured: {:.1} GFLOP/s (our f32 GEMM), {:.1} GB/s (copy)",
            flops / 1e9,
            bytes_per_s / 1e9
        ),
    }
}

fn cpu_gemm_seconds(n: usize) -> Result<f64> {
    let a = Tensor::full(&[n, n], 0.5, DType::F32, Device::Cpu)?;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        std::hint::black_box(matmul_forward(&a, &a, false, false)?);
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The compulsory work of one timed iteration.
#[derive(Clone, Copy, Debug, Default)]
pub struct Work {
    pub flops: f64,
    pub bytes: f64,
}

impl Work {
    pub fn flop_seconds(&self, c: &Ceilings) -> f64 {
        self.flops / c.flops
    }
    pub fn byte_seconds(&self, c: &Ceilings) -> f64 {
        self.bytes / c.bytes_per_s
    }
    pub fn floor_seconds(&self, c: &Ceilings) -> f64 {
        self.flop_seconds(c).max(self.byte_seconds(c))
    }
    /// Which of the two limits the floor.
    pub fn bound(&self, c: &Ceilings) -> &'static str {
        if self.flop_seconds(c) >= self.byte_seconds(c) {
            "FLOP"
        } else {
            "bytes"
        }
    }
}
