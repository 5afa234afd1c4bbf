//! [`Mpi`] as a [`Communicator`]: tensors packed into host buffers of f64 (when every tensor
//! of a call is f64) or f32 (anything else, converted there and back), one collective per call.

use super::Mpi;
use crate::dist::Communicator;
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

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world
    }

    fn all_reduce_sum(&self, ts: &[Tensor]) -> Result<Vec<Tensor>> {
        let refs: Vec<&Tensor> = ts.iter().collect();
        let sizes: Vec<usize> = ts.iter().map(|t| t.numel()).collect();
        let mut out = Vec::with_capacity(ts.len());
        let mut at = 0;
        if wide(&refs) {
            let mut send = Vec::with_capacity(sizes.iter().sum());
            for t in ts {
                send.extend(t.to_vec_f64()?);
            }
            let sum = self.all_reduce_buf(&send)?;
            for (t, n) in ts.iter().zip(&sizes) {
                out.push(shaped(Host::F64(sum[at..at + n].to_vec()), t.shape(), t)?);
                at += n;
            }
        } else {
            let mut send = Vec::with_capacity(sizes.iter().sum());
            for t in ts {
                send.extend(t.to_vec_f32()?);
            }
            let sum = self.all_reduce_buf(&send)?;
            for (t, n) in ts.iter().zip(&sizes) {
                out.push(shaped(Host::F32(sum[at..at + n].to_vec()), t.shape(), t)?);
                at += n;
            }
        }
        Ok(out)
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
