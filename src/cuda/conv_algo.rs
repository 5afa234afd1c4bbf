//! Which cuDNN convolution algorithm to use, from a measured search (results sorted by time),
//! and the on-disk cache of those choices (`algo_cache.rs`; a search short of workspace is kept for
//! its process only).
//!
//! A search returns (algorithm, math type) pairs: an algorithm without a tensor-core variant
//! comes back with CUDNN_DEFAULT_MATH although the descriptor asked for tensor ops, and its
//! measured time and workspace are those of that math type. The choice keeps the pair, and the
//! convolution sets the descriptor's math type from it before running (as PyTorch does).
//!
//! Every dtype, under `--conv-algorithms deterministic` (the default): the fastest algorithm
//! that succeeded and is `CUDNN_DETERMINISTIC` (the same bits on every run: a graph replay
//! equals the eager step, and a failing test replays), else, when none is, the fastest that
//! succeeded. The nondeterministic ones (backward algorithms adding partial sums with atomics)
//! can be the fastest for some shapes; `--conv-algorithms fastest` takes them
//! (`src/ops/conv2d/algorithms.rs`), and its choices are kept apart from the deterministic ones.
//! bf16 (training): with the math type it was measured with.
//! f32 (the CPU parity tests and f32 runs): also not in the excluded families below; f32 runs
//! are about accuracy, not speed. f32 runs with CUDNN_FMA_MATH whatever the search says:
//! CUDNN_DEFAULT_MATH lets cuDNN use TF32.
//! Excluded for f32, in every direction:
//! - `FFT`, `FFT_TILING`: the convolution is a product in the frequency domain; the rounding
//!   error of the transforms grows with the transform size and is not the `8·u·sqrt(k)` of a
//!   direct sum of k products that our tolerances (`testing::tolerance`) assume.
//! - `WINOGRAD_NONFUSED`: larger Winograd tiles (F(4x4,3x3) and up) whose transform matrices
//!   have coefficients up to about 10, amplifying rounding error well past that bound.
//! - `WINOGRAD` (fused F(2x2,3x3)): its error is milder, but it is still not a direct sum; kept
//!   out so every f32 result is a GEMM-style sum the tolerance model describes.

use super::algo_cache::{self, AlgoCache, Choice, Faster};
use super::dnn::Key;
use super::driver::cudnn::{
    cudnnConvolutionBwdDataAlgoPerf_t as DataPerf, cudnnConvolutionBwdDataAlgo_t as DataAlgo,
    cudnnConvolutionBwdFilterAlgoPerf_t as FilterPerf,
    cudnnConvolutionBwdFilterAlgo_t as FilterAlgo, cudnnConvolutionFwdAlgoPerf_t as FwdPerf,
    cudnnConvolutionFwdAlgo_t as FwdAlgo, cudnnDeterminism_t, cudnnMathType_t, cudnnStatus_t,
    AlgoPerf,
};
use crate::conv_policy::{ChoiceSummary, ConvAlgorithms};
use crate::DType;
use std::collections::BTreeMap;

/// One search result, whatever the direction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub algo: u32,
    /// The math type it was measured with (cudnnMathType_t's value).
    pub math: u32,
    pub ok: bool,
    pub deterministic: bool,
    pub workspace: usize,
    /// cuDNN's measured time, in milliseconds.
    pub ms: f32,
}

impl Candidate {
    fn of(p: &AlgoPerf) -> Self {
        // Negative values are unknown, as are values past the enums: u32::MAX is neither.
        let value = |v: i32| u32::try_from(v).unwrap_or(u32::MAX);
        Candidate {
            algo: value(p.algo),
            math: value(p.math_type),
            ok: p.status == cudnnStatus_t::CUDNN_STATUS_SUCCESS as i32,
            deterministic: p.determinism == cudnnDeterminism_t::CUDNN_DETERMINISTIC as i32,
            workspace: p.memory,
            ms: p.time,
        }
    }
}

/// A convolution direction (named by its cuDNN perf struct, never read as one): its name in
/// cache keys, its algorithms, those excluded for f32.
pub(crate) trait Direction: Copy {
    const NAME: &'static str;
    type Algo: Copy + 'static;
    /// Every algorithm of the direction this build knows.
    const ALGOS: &'static [Self::Algo];
    fn algo_from(v: u32) -> Option<Self::Algo>;
    /// The algorithm's enum value (as the search results and the disk cache hold it).
    fn value(a: Self::Algo) -> u32;
    fn excluded_for_f32(v: u32) -> bool;
}

macro_rules! direction {
    ($perf:ty, $algo:ty, $name:literal, [$($variant:ident),*], excluded [$($ex:ident),*]) => {
        impl Direction for $perf {
            const NAME: &'static str = $name;
            type Algo = $algo;
            const ALGOS: &'static [$algo] = &[$(<$algo>::$variant),*];
            fn algo_from(v: u32) -> Option<$algo> {
                Self::ALGOS.iter().copied().find(|a| *a as u32 == v)
            }
            fn value(a: $algo) -> u32 {
                a as u32
            }
            fn excluded_for_f32(v: u32) -> bool {
                [$(<$algo>::$ex),*].iter().any(|a| *a as u32 == v)
            }
        }
    };
}

direction!(FwdPerf, FwdAlgo, "fwd",
    [CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
     CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_DIRECT,
     CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
     CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED],
    excluded [CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
     CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED]);
direction!(DataPerf, DataAlgo, "bwd_data",
    [CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
     CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING,
     CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED],
    excluded [CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING,
     CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED]);
direction!(FilterPerf, FilterAlgo, "bwd_filter",
    [CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3,
     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED,
     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING],
    excluded [CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING,
     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED]);

/// The choice among direction `D`'s search results (sorted fastest first) under this file's
/// policy and `algorithms`. A result naming an algorithm or math type this build does not know
/// (a newer cuDNN) is passed over: it could not be run by name.
pub fn pick<D: Direction>(
    results: &[AlgoPerf],
    dtype: DType,
    algorithms: ConvAlgorithms,
) -> Result<Choice, String> {
    let strict = dtype == DType::F32;
    let candidates: Vec<Candidate> = results.iter().map(Candidate::of).collect();
    let known = |c: &Candidate| D::algo_from(c.algo).is_some() && math_from(c.math).is_some();
    let allowed = |c: &&Candidate| c.ok && known(c) && (!strict || !D::excluded_for_f32(c.algo));
    let wanted = |c: &&Candidate| c.deterministic || algorithms == ConvAlgorithms::Fastest;
    let fastest = candidates.iter().find(allowed);
    // A deterministic one if any; else (cuDNN may offer none for some layouts, groups or
    // dilations) the fastest allowed one rather than no convolution at all.
    candidates
        .iter()
        .filter(allowed)
        .find(wanted)
        .or(fastest)
        .map(|c| Choice {
            algo: c.algo,
            math: if strict {
                cudnnMathType_t::CUDNN_FMA_MATH as u32
            } else {
                c.math
            },
            workspace: c.workspace,
            ms: c.ms.is_finite().then_some(c.ms),
            // What `fastest` would have taken, when this policy passed it over.
            faster: fastest.filter(|f| *f != c).map(|f| Faster {
                algo: f.algo,
                ms: f.ms.is_finite().then_some(f.ms),
            }),
        })
        .ok_or_else(|| {
            let seen: Vec<String> = candidates.iter().map(|c| format!("{c:?}")).collect();
            format!(
                "no {} algorithm qualifies for {} ({}); results: [{}]",
                D::NAME,
                dtype.name(),
                if strict {
                    "f32 needs a known non-FFT, non-Winograd one that succeeded"
                } else {
                    "none that succeeded is known to this build"
                },
                seen.join(", ")
            )
        })
}

/// The disk cache's key for direction `D`.
pub fn disk_key<D: Direction>(
    gpu: &str,
    cudnn: usize,
    dtype: DType,
    algorithms: ConvAlgorithms,
    geometry: &[usize],
) -> String {
    disk_key_of(D::NAME, gpu, cudnn, (dtype, algorithms, geometry))
}

/// The disk cache's key for the direction named `direction`.
fn disk_key_of(
    direction: &str,
    gpu: &str,
    cudnn: usize,
    (dtype, algorithms, geometry): (DType, ConvAlgorithms, &[usize]),
) -> String {
    let what = algo_cache::What {
        direction,
        dtype: dtype.name(),
        algorithms: algorithms.name(),
    };
    algo_cache::key(&what, gpu, cudnn, geometry)
}

/// A convolution that ran: its direction's name, its memo key and how often it ran.
pub type Ran<'a> = (&'static str, &'a Key, u64);

/// A choice ready to run: the algorithm, the math type to set on the descriptor, the workspace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Chosen<A> {
    pub algo: A,
    pub math: cudnnMathType_t,
    pub workspace: usize,
}

/// The math type of value `v`.
pub fn math_from(v: u32) -> Option<cudnnMathType_t> {
    use cudnnMathType_t::*;
    [
        CUDNN_DEFAULT_MATH,
        CUDNN_TENSOR_OP_MATH,
        CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION,
        CUDNN_FMA_MATH,
    ]
    .into_iter()
    .find(|m| *m as u32 == v)
}

/// `c` for direction `D`, if it names a known algorithm and math type that the policy allows
/// for `dtype`.
fn chosen<D: Direction>(c: Choice, dtype: DType) -> Option<Chosen<D::Algo>> {
    if dtype == DType::F32
        && (D::excluded_for_f32(c.algo) || c.math != cudnnMathType_t::CUDNN_FMA_MATH as u32)
    {
        return None;
    }
    Some(Chosen {
        algo: D::algo_from(c.algo)?,
        math: math_from(c.math)?,
        workspace: c.workspace,
    })
}

/// What one measured search returned: its results, fastest first, and, when the device could
/// not give the workspace its largest algorithm asks for, (bytes offered, bytes asked for).
pub struct Searched {
    pub results: Vec<AlgoPerf>,
    pub short: Option<(usize, usize)>,
}

/// One device's choices: the disk cache and what keys it (GPU name, cuDNN version), and the
/// choices of searches made short of memory, kept for this process only.
#[derive(Debug)]
pub struct DiskChoices {
    cache: AlgoCache,
    /// A search short of workspace did not time the algorithms needing more: its choice could
    /// be slower than one made with room, so a later process searches again.
    this_process: BTreeMap<String, Choice>,
    gpu: String,
    cudnn: usize,
    warned: bool,
    warned_short: bool,
}

impl DiskChoices {
    pub fn new(gpu: String, cudnn: usize) -> Self {
        DiskChoices {
            cache: AlgoCache::open_default(),
            this_process: BTreeMap::new(),
            gpu,
            cudnn,
            warned: false,
            warned_short: false,
        }
    }

    /// The choice under `key`: on disk, else made short of memory in this process.
    fn get(&self, key: &str) -> Option<Choice> {
        self.cache
            .get(key)
            .or_else(|| self.this_process.get(key).copied())
    }

    /// What the choices of the convolutions `ran` cost against the fastest algorithms, by
    /// cuDNN's measured times; only those run under `policy`.
    pub fn summary<'a>(
        &self,
        policy: ConvAlgorithms,
        ran: impl Iterator<Item = Ran<'a>>,
    ) -> ChoiceSummary {
        let mut s = ChoiceSummary {
            policy,
            ..ChoiceSummary::default()
        };
        for (direction, (dtype, algorithms, geometry), calls) in ran.filter(|r| r.1 .1 == policy) {
            let key = disk_key_of(
                direction,
                &self.gpu,
                self.cudnn,
                (*dtype, *algorithms, geometry),
            );
            let Some(c) = self.get(&key) else {
                continue;
            };
            s.chosen += 1;
            s.short += usize::from(self.this_process.contains_key(&key));
            s.passed_over += usize::from(c.faster.is_some());
            // Timed: the chosen algorithm's time and, where one was passed over, its time.
            let fastest = match c.faster {
                Some(f) => f.ms,
                None => c.ms,
            };
            if let (Some(ms), Some(fastest)) = (c.ms, fastest) {
                s.timed += 1;
                s.calls += calls;
                s.chosen_ms += calls as f64 * f64::from(ms);
                s.fastest_ms += calls as f64 * f64::from(fastest);
            }
        }
        s
    }

    /// The algorithm for one convolution: from the disk cache, else from `search` (cuDNN's
    /// measured search) under this file's policy, then remembered: on disk, or for this process
    /// only when the search was short of workspace (said once per process).
    pub fn choose<D: Direction>(
        &mut self,
        dtype: DType,
        algorithms: ConvAlgorithms,
        geometry: &[usize],
        search: impl FnOnce() -> crate::Result<Searched>,
    ) -> crate::Result<Chosen<D::Algo>> {
        let key = disk_key::<D>(&self.gpu, self.cudnn, dtype, algorithms, geometry);
        // A kept choice naming a known algorithm that the policy still allows for `dtype`.
        if let Some(c) = self.get(&key).and_then(|c| chosen::<D>(c, dtype)) {
            return Ok(c);
        }
        let Searched { results, short } = search()?;
        let choice = pick::<D>(&results, dtype, algorithms).map_err(crate::Error::Cuda)?;
        let run = chosen::<D>(choice, dtype).ok_or_else(|| {
            crate::Error::Cuda(format!(
                "cuDNN returned unknown {} algorithm {} or math type {}",
                D::NAME,
                choice.algo,
                choice.math
            ))
        })?;
        if let Some((offered, wanted)) = short {
            if !self.warned_short {
                let mib = |b: usize| b as f64 / (1u64 << 20) as f64;
                eprintln!(
                    "warning: cuDNN's algorithm search for a {} convolution {geometry:?} had \
                     {:.1} MiB of workspace, short of the {:.1} MiB its largest algorithm asks \
                     for (device memory): the algorithms needing more were not timed; choices \
                     made short of memory are kept for this process only",
                    D::NAME,
                    mib(offered),
                    mib(wanted)
                );
                self.warned_short = true;
            }
            self.this_process.insert(key, choice);
        } else if let Err(e) = self.cache.insert(key, choice) {
            if !self.warned {
                eprintln!("warning: cuDNN algorithm choices stay in memory only: {e}");
                self.warned = true;
            }
        }
        Ok(run)
    }

    /// Forgets the choice for one convolution (it failed when run), here and on disk.
    pub fn forget<D: Direction>(
        &mut self,
        dtype: DType,
        algorithms: ConvAlgorithms,
        geometry: &[usize],
    ) {
        let key = disk_key::<D>(&self.gpu, self.cudnn, dtype, algorithms, geometry);
        self.this_process.remove(&key);
        if let Err(e) = self.cache.remove(&key) {
            eprintln!("warning: a failed cuDNN algorithm choice stays on disk: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The disk cache's choice for direction `D`, as `DiskChoices::choose` takes it.
    fn cached<D: Direction>(cache: &AlgoCache, key: &str, dtype: DType) -> Option<Chosen<D::Algo>> {
        chosen::<D>(cache.get(key)?, dtype)
    }

    const DET: ConvAlgorithms = ConvAlgorithms::Deterministic;

    fn fwd(algo: FwdAlgo, ok: bool, det: bool, mem: usize) -> AlgoPerf {
        let status = if ok {
            cudnnStatus_t::CUDNN_STATUS_SUCCESS
        } else {
            cudnnStatus_t::CUDNN_STATUS_NOT_SUPPORTED
        };
        let determinism = if det {
            cudnnDeterminism_t::CUDNN_DETERMINISTIC
        } else {
            cudnnDeterminism_t::CUDNN_NON_DETERMINISTIC
        };
        AlgoPerf {
            algo: algo as i32,
            status: status as i32,
            memory: mem,
            determinism: determinism as i32,
            math_type: cudnnMathType_t::CUDNN_DEFAULT_MATH as i32,
            ..AlgoPerf::default()
        }
    }

    #[test]
    fn f32_skips_fft_and_winograd_and_both_prefer_deterministic() {
        use FwdAlgo::*;
        let results = [
            fwd(CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, false, true, 0),
            fwd(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, true, true, 10),
            fwd(CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, true, true, 20),
            fwd(CUDNN_CONVOLUTION_FWD_ALGO_GEMM, true, false, 30),
            fwd(
                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                true,
                true,
                40,
            ),
        ];
        let f = pick::<FwdPerf>(&results, DType::F32, DET).unwrap();
        assert_eq!(
            f.algo,
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM as u32
        );
        assert_eq!(f.workspace, 40);
        assert_eq!(f.math, cudnnMathType_t::CUDNN_FMA_MATH as u32);
        // bf16 takes Winograd and FFT, deterministic first: the fastest deterministic one,
        // over the faster nondeterministic GEMM when it is listed first.
        let b = pick::<FwdPerf>(&results, DType::BF16, DET).unwrap();
        assert_eq!(b.algo, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED as u32);
        let mut gemm_first = results.to_vec();
        gemm_first.swap(1, 3);
        let b = pick::<FwdPerf>(&gemm_first, DType::BF16, DET).unwrap();
        assert_eq!(b.algo, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING as u32);
        // No deterministic one succeeded: the fastest that did.
        let b = pick::<FwdPerf>(&gemm_first[..2], DType::BF16, DET).unwrap();
        assert_eq!(b.algo, CUDNN_CONVOLUTION_FWD_ALGO_GEMM as u32);
        // No deterministic one allowed: the fastest allowed one.
        let f = pick::<FwdPerf>(&results[..4], DType::F32, DET).unwrap();
        assert_eq!(f.algo, CUDNN_CONVOLUTION_FWD_ALGO_GEMM as u32);
        let none = pick::<FwdPerf>(&results[..3], DType::F32, DET).unwrap_err();
        assert!(none.contains("non-FFT, non-Winograd"), "{none}");
    }

    #[test]
    fn fastest_takes_a_faster_nondeterministic_algorithm_and_is_cached_apart() {
        use FwdAlgo::*;
        let fastest = ConvAlgorithms::Fastest;
        let results = [
            fwd(CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, false, true, 0),
            fwd(CUDNN_CONVOLUTION_FWD_ALGO_GEMM, true, false, 30),
            fwd(CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, true, true, 20),
            fwd(
                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                true,
                true,
                40,
            ),
        ];
        for dt in [DType::F32, DType::BF16] {
            let f = pick::<FwdPerf>(&results, dt, fastest).unwrap();
            assert_eq!(f.algo, CUDNN_CONVOLUTION_FWD_ALGO_GEMM as u32, "{dt:?}");
            let d = pick::<FwdPerf>(&results, dt, DET).unwrap();
            assert_ne!(d.algo, CUDNN_CONVOLUTION_FWD_ALGO_GEMM as u32, "{dt:?}");
        }
        // The deterministic choice records its time and what it passed over (the GEMM);
        // a time that is not finite is not recorded (JSON has no NaN).
        let mut timed = results.to_vec();
        timed[1].time = 1.5;
        timed[2].time = f32::NAN;
        let d = pick::<FwdPerf>(&timed, DType::BF16, DET).unwrap();
        assert_eq!(d.algo, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING as u32);
        assert_eq!(d.ms, None);
        let passed = d.faster.unwrap();
        assert_eq!(passed.algo, CUDNN_CONVOLUTION_FWD_ALGO_GEMM as u32);
        assert_eq!(passed.ms, Some(1.5));
        let f = pick::<FwdPerf>(&timed, DType::BF16, fastest).unwrap();
        assert_eq!((f.ms, f.faster), (Some(1.5), None));
        // f32 keeps its accuracy exclusions under `fastest`: FFT stays out.
        let mut fft_first = results.to_vec();
        fft_first.swap(1, 2);
        let f = pick::<FwdPerf>(&fft_first, DType::F32, fastest).unwrap();
        assert_eq!(f.algo, CUDNN_CONVOLUTION_FWD_ALGO_GEMM as u32);
        let g = [8, 32, 32, 16, 16, 3, 3];
        assert_ne!(
            disk_key::<FwdPerf>("GPU", 91000, DType::BF16, DET, &g),
            disk_key::<FwdPerf>("GPU", 91000, DType::BF16, fastest, &g),
            "a fastest choice would be read back as a deterministic one"
        );
    }

    #[test]
    fn results_naming_values_this_build_does_not_know_are_passed_over() {
        use FwdAlgo::*;
        let known = fwd(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, true, true, 4);
        // A newer cuDNN's algorithm (8 is ALGO_COUNT here), math type, or a status the enum
        // does not list: none may be chosen, and none may be read as an enum.
        let new_algo = AlgoPerf { algo: 8, ..known };
        let new_math = AlgoPerf {
            math_type: 7,
            ..known
        };
        let negative = AlgoPerf { algo: -1, ..known };
        let new_status = AlgoPerf {
            status: 3999,
            ..known
        };
        for dt in [DType::F32, DType::BF16] {
            let c = pick::<FwdPerf>(&[new_algo, new_math, negative, new_status, known], dt, DET);
            assert_eq!(c.unwrap().workspace, 4, "{dt:?}");
            let none = pick::<FwdPerf>(&[new_algo, new_math, negative, new_status], dt, DET);
            assert!(none.unwrap_err().contains("algo: 8"), "{dt:?}");
        }
    }

    #[test]
    fn the_math_type_travels_with_the_algorithm() {
        use FwdAlgo::*;
        let mut tc = fwd(
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
            true,
            true,
            8,
        );
        tc.math_type = cudnnMathType_t::CUDNN_TENSOR_OP_MATH as i32;
        // Measured without tensor cores (cuDNN returns it so when the algorithm has none).
        let plain = fwd(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, true, true, 0);
        let b = pick::<FwdPerf>(&[plain, tc], DType::BF16, DET).unwrap();
        assert_eq!(
            (b.algo, b.math),
            (
                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM as u32,
                cudnnMathType_t::CUDNN_DEFAULT_MATH as u32
            )
        );
        let b = pick::<FwdPerf>(&[tc, plain], DType::BF16, DET).unwrap();
        assert_eq!(b.math, cudnnMathType_t::CUDNN_TENSOR_OP_MATH as u32);
        // f32 runs FMA whatever the search reports (DEFAULT would allow TF32).
        for r in [[plain, tc], [tc, plain]] {
            let f = pick::<FwdPerf>(&r, DType::F32, DET).unwrap();
            assert_eq!(f.math, cudnnMathType_t::CUDNN_FMA_MATH as u32);
        }
    }

    #[test]
    fn cached_values_map_back_and_respect_the_f32_policy() {
        use cudnnMathType_t::*;
        let dir = tempfile::tempdir().unwrap();
        let mut cache = AlgoCache::open(dir.path().join("c.json"));
        let g = [8, 32, 32, 16, 16, 3, 3];
        let kf = disk_key::<FwdPerf>("GPU", 91000, DType::F32, DET, &g);
        let kb = disk_key::<FilterPerf>("GPU", 91000, DType::F32, DET, &g);
        assert_ne!(kf, kb, "directions share a key");
        let choice = |algo: u32, math: cudnnMathType_t, workspace: usize| {
            Choice::plain(algo, math as u32, workspace)
        };
        let fft = FwdAlgo::CUDNN_CONVOLUTION_FWD_ALGO_FFT as u32;
        cache
            .insert(kf.clone(), choice(fft, CUDNN_TENSOR_OP_MATH, 5))
            .unwrap();
        assert!(cached::<FwdPerf>(&cache, &kf, DType::F32).is_none());
        assert_eq!(
            cached::<FwdPerf>(&cache, &kf, DType::BF16),
            Some(Chosen {
                algo: FwdAlgo::CUDNN_CONVOLUTION_FWD_ALGO_FFT,
                math: CUDNN_TENSOR_OP_MATH,
                workspace: 5
            })
        );
        cache
            .insert(kb.clone(), choice(77, CUDNN_FMA_MATH, 0))
            .unwrap();
        assert!(
            cached::<FilterPerf>(&cache, &kb, DType::BF16).is_none(),
            "unknown algo used"
        );
        cache.insert(kb.clone(), Choice::plain(3, 9, 0)).unwrap();
        assert!(
            cached::<FilterPerf>(&cache, &kb, DType::BF16).is_none(),
            "unknown math type used"
        );
        // An f32 choice to run with anything but FMA is not used.
        cache
            .insert(kb.clone(), choice(3, CUDNN_DEFAULT_MATH, 9))
            .unwrap();
        assert!(cached::<FilterPerf>(&cache, &kb, DType::F32).is_none());
        cache
            .insert(kb.clone(), choice(3, CUDNN_FMA_MATH, 9))
            .unwrap();
        assert_eq!(
            cached::<FilterPerf>(&cache, &kb, DType::F32),
            Some(Chosen {
                algo: FilterAlgo::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3,
                math: CUDNN_FMA_MATH,
                workspace: 9
            })
        );
    }
}
