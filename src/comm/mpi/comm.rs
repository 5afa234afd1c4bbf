//! [`Mpi`] as a [`Communicator`]: tensors packed into host buffers of f64 (when every tensor
//! of a call is f64) or f32 (anything else, converted there and back), one collective per call.

use super::ffi::Handle;
use super::Mpi;
use crate::comm::{Communicator, PendingSum};
use crate::{DType, Error, Result, Tensor};

/// Whether tensors travel as f64 (all of them f64) or f32.
fn wide(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| t.dtype() == DType::F64)
}

/// `data` (f64 or f32 values) as a tensor shaped, typed and placed like `like`.
fn shaped(data: Host, shape: &[usize], like: &Tensor) -> Result<Tensor> {
    let t = match data {
        Host::F64(v) => Tensor::from_f64(&v, shape, DType::F64)?,
        Host::F32(v) => Tensor::from_vec(v, shape)?,
    };
    t.to_dtype(like.dtype())?.to_device(like.device())
}

enum Host {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

/// The send and receive buffers of an all-reduce in flight (their heap data must not move or
/// be freed until it completes).
enum Bufs {
    F64(Vec<f64>, Vec<f64>),
    F32(Vec<f32>, Vec<f32>),
}

/// A started `MPI_Iallreduce` of tensors packed into one buffer; `wait` polls it to the
/// deadline and unpacks the sums like the tensors.
struct MpiSum<'a> {
    mpi: &'a Mpi,
    req: Option<(Handle, u64)>,
    bufs: Bufs,
    like: Vec<Tensor>,
}

impl Mpi {
    fn sum_start(&self, ts: Vec<Tensor>) -> Result<MpiSum<'_>> {
        let refs: Vec<&Tensor> = ts.iter().collect();
        let n: usize = ts.iter().map(|t| t.numel()).sum();
        let mut bufs = if wide(&refs) {
            let mut send = Vec::with_capacity(n);
            for t in &ts {
                send.extend(t.to_vec_f64()?);
            }
            Bufs::F64(send, vec![0.0; n])
        } else {
            let mut send = Vec::with_capacity(n);
            for t in &ts {
                send.extend(t.to_vec_f32()?);
            }
            Bufs::F32(send, vec![0.0; n])
        };
        let req = match &mut bufs {
            Bufs::F64(s, r) => self.all_reduce_start(s, r)?,
            Bufs::F32(s, r) => self.all_reduce_start(s, r)?,
        };
        Ok(MpiSum {
            mpi: self,
            req: Some(req),
            bufs,
            like: ts,
        })
    }
}

impl PendingSum for MpiSum<'_> {
    fn wait(mut self: Box<Self>) -> Result<Vec<Tensor>> {
        if let Some((req, seq)) = self.req.take() {
            if let Err(e) = self.mpi.poll("all_reduce_sum", seq, req) {
                // Still in flight: MPI may write into the buffers until the process ends.
                std::mem::forget(std::mem::replace(&mut self.bufs, Bufs::F32(vec![], vec![])));
                return Err(e);
            }
        }
        let mut out = Vec::with_capacity(self.like.len());
        let mut at = 0;
        for t in &self.like {
            let n = t.numel();
            let data = match &self.bufs {
                Bufs::F64(_, r) => Host::F64(r[at..at + n].to_vec()),
                Bufs::F32(_, r) => Host::F32(r[at..at + n].to_vec()),
            };
            out.push(shaped(data, t.shape(), t)?);
            at += n;
        }
        Ok(out)
    }
}

impl Drop for MpiSum<'_> {
    fn drop(&mut self) {
        // Dropped unwaited (an error elsewhere): the collective must end before its buffers go.
        if let Some((req, seq)) = self.req.take() {
            if self.mpi.poll("all_reduce_sum", seq, req).is_err() {
                std::mem::forget(std::mem::replace(&mut self.bufs, Bufs::F32(vec![], vec![])));
            }
        }
    }
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world
    }

    fn all_reduce_sum(&self, ts: &[Tensor]) -> Result<Vec<Tensor>> {
        Box::new(self.sum_start(ts.to_vec())?).wait()
    }

    fn all_reduce_sum_start(&self, ts: Vec<Tensor>) -> Result<Box<dyn PendingSum + '_>> {
        Ok(Box::new(self.sum_start(ts)?))
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let rest = t.shape().get(1..).unwrap_or(&[]).to_vec();
        let per: usize = rest.iter().product::<usize>().max(1);
        if t.shape().is_empty() {
            return Err(Error::shape("mpi all_gather", "a scalar has no rows"));
        }
        let (data, counts) = if wide(&[t]) {
            let (v, c) = self.all_gather_buf(&t.to_vec_f64()?)?;
            (Host::F64(v), c)
        } else {
            let (v, c) = self.all_gather_buf(&t.to_vec_f32()?)?;
            (Host::F32(v), c)
        };
        if let Some(r) = counts.iter().position(|c| c % per != 0) {
            return Err(Error::shape(
                "mpi all_gather",
                format!(
                    "rank {r} sent {} elements, not whole rows of {rest:?}",
                    counts[r]
                ),
            ));
        }
        let mut shape = vec![counts.iter().sum::<usize>() / per];
        shape.extend(rest);
        shaped(data, &shape, t)
    }

    fn broadcast(&self, t: &Tensor) -> Result<Tensor> {
        let data = if wide(&[t]) {
            let mut v = t.to_vec_f64()?;
            self.broadcast_buf(&mut v, "broadcast")?;
            Host::F64(v)
        } else {
            let mut v = t.to_vec_f32()?;
            self.broadcast_buf(&mut v, "broadcast")?;
            Host::F32(v)
        };
        shaped(data, t.shape(), t)
    }

    fn barrier(&self) -> Result<()> {
        self.run("barrier", |lib, req| unsafe {
            (lib.ibarrier)(lib.comm_world, req)
        })
    }
}
