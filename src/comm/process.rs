//! Joining a multi-process job: the communicator of this process's rank, chosen by device.
//!
//! CPU ranks talk through MPI (feature `mpi`), which must see the same world as the launcher's
//! variables. GPU ranks talk through NCCL (feature `cuda`), one communicator per process on the
//! local rank's GPU; rank 0's NCCL unique id reaches the others by MPI broadcast when the
//! process runs under MPI, else through the TCP rendezvous at `MASTER_ADDR:MASTER_PORT`
//! ([`super::rendezvous`]: only the 128-byte id travels there; under torchrun, whose agent
//! serves its own store on `MASTER_PORT`, at `MASTER_PORT + 1`).

use super::launch::Launch;
use super::Comm;
use crate::{Device, Error, Result};
use std::time::Duration;

/// This rank's communicator, or `None` in a world of one.
pub fn join(launch: &Launch, device: Device, timeout: Duration) -> Result<Option<Comm>> {
    if launch.world == 1 {
        return Ok(None);
    }
    match device {
        Device::Cpu => cpu(launch, timeout).map(Some),
        Device::Cuda(ordinal) => gpu(launch, ordinal, timeout).map(Some),
    }
}

#[cfg(feature = "mpi")]
fn mpi_world(launch: &Launch, timeout: Duration) -> Result<std::sync::Arc<super::mpi::Mpi>> {
    use super::Communicator;
    let m = super::mpi::world(timeout)?;
    if (m.rank(), m.world_size()) != (launch.rank, launch.world) {
        return Err(Error::Config(format!(
            "launch: {} places this process at rank {} of {}, but MPI sees rank {} of {} \
             (CPU ranks need an MPI launcher: mpirun, or srun with --mpi=pmix)",
            launch.launcher.name(),
            launch.rank,
            launch.world,
            m.rank(),
            m.world_size()
        )));
    }
    Ok(m)
}

#[cfg(feature = "mpi")]
fn cpu(launch: &Launch, timeout: Duration) -> Result<Comm> {
    Ok(mpi_world(launch, timeout)?)
}

#[cfg(not(feature = "mpi"))]
fn cpu(launch: &Launch, _timeout: Duration) -> Result<Comm> {
    Err(Error::Config(format!(
        "launch: {} started {} processes on the CPU, which talk through MPI, and this build \
         has no MPI (build with --features mpi)",
        launch.launcher.name(),
        launch.world
    )))
}

#[cfg(feature = "cuda")]
fn gpu(launch: &Launch, ordinal: usize, timeout: Duration) -> Result<Comm> {
    let make = || super::NcclId::new().map(|id| id.to_bytes());
    let bytes = nccl_id(launch, timeout, make)?;
    let comm = super::Nccl::new(
        ordinal,
        launch.rank,
        launch.world,
        super::NcclId::from_bytes(bytes),
        timeout,
    )?;
    Ok(std::sync::Arc::new(comm))
}

#[cfg(not(feature = "cuda"))]
fn gpu(_launch: &Launch, _ordinal: usize, _timeout: Duration) -> Result<Comm> {
    Err(Error::device(
        "data parallel",
        crate::cuda_unavailable_reason(),
    ))
}

/// Rank 0's id (made by `make` there) on every rank: by MPI broadcast under an MPI launcher,
/// else through the rendezvous.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn nccl_id(
    launch: &Launch,
    timeout: Duration,
    make: impl FnOnce() -> Result<[u8; 128]>,
) -> Result<[u8; 128]> {
    let mut bytes = [0u8; 128];
    if launch.rank == 0 {
        bytes = make()?;
    }
    #[cfg(feature = "mpi")]
    if launch.launcher == super::launch::Launcher::OpenMpi || launch.master.is_none() {
        mpi_world(launch, timeout)?.broadcast_bytes(&mut bytes)?;
        return Ok(bytes);
    }
    let Some((host, port)) = &launch.master else {
        return Err(Error::Config(format!(
            "launch: {} ranks on GPUs need the NCCL id from rank 0: set MASTER_ADDR and \
             MASTER_PORT (torchrun does), or build with --features mpi and start with mpirun",
            launch.launcher.name()
        )));
    };
    // torchrun's agent already serves its own store on MASTER_PORT: use the next port.
    let port = match launch.launcher {
        super::launch::Launcher::Torchrun => port.checked_add(1).ok_or_else(|| {
            Error::Config("launch: MASTER_PORT=65535 leaves no port for the NCCL id".into())
        })?,
        _ => *port,
    };
    super::rendezvous::share_id(launch.rank, launch.world, host, port, bytes, timeout)
}
