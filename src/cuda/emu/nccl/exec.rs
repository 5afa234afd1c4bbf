//! What one collective does once every rank arrived: the agreement checks and the data movement.
//!
//! Sums are taken in rank order (rank 0 + rank 1 + …), rounding to the data type after each
//! addition as NCCL's reduction steps do; deterministic, but real NCCL's order follows its ring
//! or tree, so results may differ from NCCL's in the last bits.

use crate::cuda::driver::nccl::{ncclDataType_t, ncclRedOp_t, ncclResult_t};
use crate::cuda::emu::elems::{self, Elem};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    AllReduce(ncclRedOp_t),
    AllGather,
    Broadcast(i32),
}

/// One rank's call (or its refusal, which fails the collective on every rank).
#[derive(Clone, Debug)]
pub struct Arrival {
    pub kind: Kind,
    pub send: u64,
    pub recv: u64,
    pub count: usize,
    pub dtype: ncclDataType_t,
    pub refused: Option<String>,
}

/// Bytes of one element of an NCCL data type.
pub fn size_of(d: ncclDataType_t) -> Option<usize> {
    use ncclDataType_t::*;
    match d {
        ncclInt8 | ncclUint8 => Some(1),
        ncclFloat16 | ncclBfloat16 => Some(2),
        ncclInt32 | ncclUint32 | ncclFloat32 => Some(4),
        ncclInt64 | ncclUint64 | ncclFloat64 => Some(8),
        _ => None,
    }
}

/// The element type a reduction computes with, if the emulation reduces this type.
pub fn reducible(d: ncclDataType_t) -> Option<Elem> {
    use ncclDataType_t::*;
    match d {
        ncclFloat32 => Some(Elem::F32),
        ncclFloat64 => Some(Elem::F64),
        ncclBfloat16 => Some(Elem::Bf16),
        ncclFloat16 => Some(Elem::F16),
        ncclUint64 => Some(Elem::U64),
        _ => None,
    }
}

type Outcome = Result<(), (ncclResult_t, String)>;

fn usage(d: String) -> Outcome {
    Err((ncclResult_t::ncclInvalidUsage, d))
}

/// Checks that all ranks agree, then runs the collective.
///
/// # Safety
/// The arrivals' pointers are device addresses of the emulator runtime.
pub unsafe fn execute(all: &[&Arrival], _devices: &[usize]) -> Outcome {
    if let Some((r, a)) = all.iter().enumerate().find(|(_, a)| a.refused.is_some()) {
        return Err((
            ncclResult_t::ncclInvalidUsage,
            format!(
                "rank {r}'s call was refused ({}), so the collective fails on every rank",
                a.refused.as_deref().unwrap_or("")
            ),
        ));
    }
    let first = all[0];
    for (r, a) in all.iter().enumerate().skip(1) {
        if (a.kind, a.count, a.dtype) != (first.kind, first.count, first.dtype) {
            return usage(format!(
                "ranks disagree: rank 0 calls {:?} of {} × {:?}, rank {r} {:?} of {} × {:?} \
                 (real NCCL would hang or corrupt memory)",
                first.kind, first.count, first.dtype, a.kind, a.count, a.dtype
            ));
        }
    }
    let Some(es) = size_of(first.dtype) else {
        return usage(format!("data type {:?}", first.dtype));
    };
    let bytes = first.count * es;
    if bytes == 0 {
        // Nothing moves; the call only took its turn (its pointers may be null).
        return Ok(());
    }
    let read = |p: u64, who: &str| {
        elems::read_bytes(p, bytes, who).map_err(|e| (ncclResult_t::ncclUnhandledCudaError, e))
    };
    let write = |p: u64, data: &[u8], who: &str| {
        elems::write_bytes(p, data, who).map_err(|e| (ncclResult_t::ncclUnhandledCudaError, e))
    };
    match first.kind {
        Kind::AllReduce(op) => {
            let Some(e) = reducible(first.dtype) else {
                return usage(format!("reductions of {:?} are not emulated", first.dtype));
            };
            let sends = all
                .iter()
                .map(|a| read(a.send, "ncclAllReduce sendbuff"))
                .collect::<Result<Vec<_>, _>>()?;
            let out = reduce(&sends, e, op, first.count)?;
            for a in all {
                write(a.recv, &out, "ncclAllReduce recvbuff")?;
            }
        }
        Kind::AllGather => {
            let mut out = Vec::with_capacity(bytes * all.len());
            for a in all {
                out.extend(read(a.send, "ncclAllGather sendbuff")?);
            }
            for a in all {
                write(a.recv, &out, "ncclAllGather recvbuff")?;
            }
        }
        Kind::Broadcast(root) => {
            let data = read(all[root as usize].send, "ncclBroadcast sendbuff (root)")?;
            for a in all {
                write(a.recv, &data, "ncclBroadcast recvbuff")?;
            }
        }
    }
    Ok(())
}

/// Reduces the ranks' buffers in rank order, rounding to the type after each step.
fn reduce(
    sends: &[Vec<u8>],
    e: Elem,
    op: ncclRedOp_t,
    count: usize,
) -> Result<Vec<u8>, (ncclResult_t, String)> {
    if e == Elem::U64 {
        let words = |b: &Vec<u8>| -> Vec<u64> {
            b.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        };
        let mut acc = words(&sends[0]);
        for s in &sends[1..] {
            for (a, v) in acc.iter_mut().zip(words(s)) {
                *a = match op {
                    ncclRedOp_t::ncclSum => a.wrapping_add(v),
                    ncclRedOp_t::ncclProd => a.wrapping_mul(v),
                    ncclRedOp_t::ncclMax => (*a).max(v),
                    ncclRedOp_t::ncclMin => (*a).min(v),
                    o => {
                        return Err((
                            ncclResult_t::ncclInvalidArgument,
                            format!("op {o:?} on ncclUint64"),
                        ))
                    }
                };
            }
        }
        return Ok(acc.iter().flat_map(|v| v.to_le_bytes()).collect());
    }
    // Rounds an exact f64 result to the type (one rounding, as an addition in the type would).
    let round = |v: f64| elems::round(v, e);
    let mut acc = elems::decode(&sends[0], e);
    for s in &sends[1..] {
        for (a, v) in acc.iter_mut().zip(elems::decode(s, e)) {
            *a = round(match op {
                ncclRedOp_t::ncclSum | ncclRedOp_t::ncclAvg => *a + v,
                ncclRedOp_t::ncclProd => *a * v,
                ncclRedOp_t::ncclMax => a.max(v),
                ncclRedOp_t::ncclMin => a.min(v),
                o => {
                    return Err((
                        ncclResult_t::ncclInvalidArgument,
                        format!("reduction op {o:?}"),
                    ))
                }
            });
        }
    }
    if op == ncclRedOp_t::ncclAvg {
        let n = sends.len() as f64;
        acc.iter_mut().for_each(|a| *a = round(*a / n));
    }
    debug_assert_eq!(acc.len(), count);
    let mut out = Vec::with_capacity(count * e.size());
    elems::encode(acc.into_iter(), e, &mut out);
    Ok(out)
}
