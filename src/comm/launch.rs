//! Where this process sits in a multi-process job, read from the variables its launcher set:
//! torchrun (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`), Open MPI's
//! `mpirun` (`OMPI_COMM_WORLD_RANK`, `…_SIZE`, `…_LOCAL_RANK`) and Slurm's `srun`
//! (`SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`).
//!
//! **Precedence.** Launchers nest in practice, so the innermost one wins: torchrun, then
//! mpirun, then Slurm. `srun torchrun …` gives each torchrun agent a Slurm rank (one per node)
//! and each worker a torchrun rank; `mpirun` inside an `sbatch` script inherits the batch
//! shell's `SLURM_PROCID=0`. Those outer values legitimately differ and are ignored. torchrun
//! and mpirun do not nest, so when both sets are present they must agree, else the job is
//! refused: the ranks could not agree on who is who.
//!
//! **Refused**, with the variable and its value: a value that is not a non-negative integer, a
//! world of zero, a rank or local rank outside the world, half of a launcher's set (a rank
//! without a world size or the reverse), and a `MASTER_PORT` that is not a port.
//!
//! The local rank picks the GPU: `--device cuda` (or `auto` on a GPU machine) becomes
//! `cuda:<local rank>`, or `cuda:0` in a process that sees one GPU (a launcher that gives each
//! task its own, as `srun --gpus-per-task=1` does); an explicit `cuda:N` is kept (several
//! processes may share one GPU).

use crate::{DeviceRequest, Error, Result};

/// The launcher whose variables gave the placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launcher {
    /// No launcher: a world of one.
    None,
    Torchrun,
    OpenMpi,
    Slurm,
}

impl Launcher {
    pub fn name(self) -> &'static str {
        match self {
            Launcher::None => "none",
            Launcher::Torchrun => "torchrun",
            Launcher::OpenMpi => "mpirun (Open MPI)",
            Launcher::Slurm => "slurm",
        }
    }
}

/// This process's place in the job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub launcher: Launcher,
    pub rank: usize,
    pub world: usize,
    /// Rank among the processes of this machine: the GPU ordinal.
    pub local_rank: usize,
    /// `MASTER_ADDR:MASTER_PORT`, where rank 0 serves the NCCL id when there is no MPI.
    pub master: Option<(String, u16)>,
}

impl Launch {
    /// A world of one.
    pub fn single() -> Self {
        Launch {
            launcher: Launcher::None,
            rank: 0,
            world: 1,
            local_rank: 0,
            master: None,
        }
    }

    /// Whether this process writes the run's files (checkpoints, state, metrics, summary).
    pub fn is_writer(&self) -> bool {
        self.rank == 0
    }

    /// The device this rank runs on: a GPU request without an explicit ordinal (or `auto`)
    /// takes the local rank's GPU ([`Launch::local_gpu`] among the GPUs this process sees).
    pub fn device_request(&self, requested: &str) -> Result<DeviceRequest> {
        // Counting GPUs opens the real driver, after which this process can no longer choose
        // the emulated device: only `cuda` and `auto` need the count.
        let visible = match requested {
            "cuda" | "auto" => crate::cuda_device_count(),
            _ => 0,
        };
        self.device_request_among(requested, visible)
    }

    /// [`Launch::device_request`] for a process that sees `visible` GPUs.
    pub fn device_request_among(&self, requested: &str, visible: usize) -> Result<DeviceRequest> {
        let req = requested.parse::<DeviceRequest>().map_err(Error::Config)?;
        Ok(match (req, requested) {
            (DeviceRequest::Cuda(_), "cuda") => DeviceRequest::Cuda(self.local_gpu(visible)),
            (DeviceRequest::CudaEmu(_), "cuda-emu") => DeviceRequest::CudaEmu(self.local_rank),
            (DeviceRequest::Auto, _) if crate::cuda_available() => {
                DeviceRequest::Cuda(self.local_gpu(visible))
            }
            (r, _) => r,
        })
    }

    /// The local rank's GPU among the `visible` ones: its local rank, except where the launcher
    /// gave each task a GPU of its own (`srun --gpus-per-task=1`, or a `CUDA_VISIBLE_DEVICES`
    /// per rank), so every rank sees just one GPU, its cuda:0. More ranks than GPUs otherwise
    /// is left to the device's own error, which names the ordinal and the count.
    pub fn local_gpu(&self, visible: usize) -> usize {
        if visible == 1 {
            0
        } else {
            self.local_rank
        }
    }
}

/// The three variables of one launcher: rank, world size, local rank.
struct Names {
    launcher: Launcher,
    rank: &'static str,
    world: &'static str,
    local: &'static str,
}

const TORCHRUN: Names = Names {
    launcher: Launcher::Torchrun,
    rank: "RANK",
    world: "WORLD_SIZE",
    local: "LOCAL_RANK",
};
const OPEN_MPI: Names = Names {
    launcher: Launcher::OpenMpi,
    rank: "OMPI_COMM_WORLD_RANK",
    world: "OMPI_COMM_WORLD_SIZE",
    local: "OMPI_COMM_WORLD_LOCAL_RANK",
};
const SLURM: Names = Names {
    launcher: Launcher::Slurm,
    rank: "SLURM_PROCID",
    world: "SLURM_NTASKS",
    local: "SLURM_LOCALID",
};

fn bad(name: &str, value: &str, allowed: &str) -> Error {
    Error::Config(format!(
        "launch: {name}={value:?} is not valid: expected {allowed}"
    ))
}

fn number(var: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<usize>> {
    match var(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| bad(name, &v, "a non-negative integer")),
    }
}

/// One launcher's placement, if its variables are set.
fn read(var: &impl Fn(&str) -> Option<String>, n: &Names) -> Result<Option<Launch>> {
    let (rank, world) = (number(var, n.rank)?, number(var, n.world)?);
    let local = number(var, n.local)?;
    let (rank, world) = match (rank, world) {
        (None, None) => return Ok(None),
        (Some(r), Some(w)) => (r, w),
        _ => {
            return Err(Error::Config(format!(
                "launch: {} sets only one of {} and {}: both are needed ({})",
                n.launcher.name(),
                n.rank,
                n.world,
                if rank.is_some() { n.rank } else { n.world }
            )))
        }
    };
    if world == 0 {
        return Err(bad(n.world, "0", "at least 1"));
    }
    if rank >= world {
        return Err(bad(
            n.rank,
            &rank.to_string(),
            &format!("a rank below {}={world}", n.world),
        ));
    }
    let local_rank = local.unwrap_or(0);
    if local_rank >= world {
        return Err(bad(
            n.local,
            &local_rank.to_string(),
            &format!("a local rank below {}={world}", n.world),
        ));
    }
    Ok(Some(Launch {
        launcher: n.launcher,
        rank,
        world,
        local_rank,
        master: None,
    }))
}

fn master(var: &impl Fn(&str) -> Option<String>) -> Result<Option<(String, u16)>> {
    match (var("MASTER_ADDR"), var("MASTER_PORT")) {
        (None, None) => Ok(None),
        (Some(a), Some(p)) => {
            if a.trim().is_empty() {
                return Err(bad("MASTER_ADDR", &a, "a host name or address"));
            }
            let port = p
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad("MASTER_PORT", &p, "a port in 1..=65535"))?;
            Ok(Some((a.trim().to_string(), port)))
        }
        (a, _) => Err(Error::Config(format!(
            "launch: {} is set but {} is not: the rendezvous needs both",
            if a.is_some() {
                "MASTER_ADDR"
            } else {
                "MASTER_PORT"
            },
            if a.is_some() {
                "MASTER_PORT"
            } else {
                "MASTER_ADDR"
            },
        ))),
    }
}

/// The placement the variables `var` returns describe (see the module doc).
pub fn detect(var: impl Fn(&str) -> Option<String>) -> Result<Launch> {
    let torchrun = read(&var, &TORCHRUN)?;
    let ompi = read(&var, &OPEN_MPI)?;
    let slurm = read(&var, &SLURM)?;
    if let (Some(t), Some(o)) = (&torchrun, &ompi) {
        if (t.rank, t.world) != (o.rank, o.world) {
            return Err(Error::Config(format!(
                "launch: torchrun and mpirun disagree: RANK={} WORLD_SIZE={} but \
                 OMPI_COMM_WORLD_RANK={} OMPI_COMM_WORLD_SIZE={} (start the trainer with one launcher)",
                t.rank, t.world, o.rank, o.world
            )));
        }
    }
    let mut launch = torchrun.or(ompi).or(slurm).unwrap_or_else(Launch::single);
    launch.master = master(&var)?;
    Ok(launch)
}

/// The placement this process's environment describes.
pub fn from_env() -> Result<Launch> {
    detect(|name| std::env::var(name).ok())
}

#[cfg(test)]
#[path = "launch_tests.rs"]
mod tests;
