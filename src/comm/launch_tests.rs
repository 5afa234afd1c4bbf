//! Launch detection: each launcher's variables, precedence, conflicts and refusals.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Result<Launch> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    detect(|k| map.get(k).cloned())
}

fn placed(l: &Launch) -> (Launcher, usize, usize, usize) {
    (l.launcher, l.rank, l.world, l.local_rank)
}

#[test]
fn no_launcher_is_a_world_of_one() {
    let l = env(&[]).unwrap();
    assert_eq!(l, Launch::single());
    assert!(l.is_writer());
}

#[test]
fn each_launcher_is_read() {
    let t = env(&[("RANK", "3"), ("WORLD_SIZE", "8"), ("LOCAL_RANK", "1")]).unwrap();
    assert_eq!(placed(&t), (Launcher::Torchrun, 3, 8, 1));
    assert!(!t.is_writer());
    let o = env(&[
        ("OMPI_COMM_WORLD_RANK", "2"),
        ("OMPI_COMM_WORLD_SIZE", "3"),
        ("OMPI_COMM_WORLD_LOCAL_RANK", "2"),
    ])
    .unwrap();
    assert_eq!(placed(&o), (Launcher::OpenMpi, 2, 3, 2));
    let s = env(&[
        ("SLURM_PROCID", "5"),
        ("SLURM_NTASKS", "16"),
        ("SLURM_LOCALID", "1"),
    ])
    .unwrap();
    assert_eq!(placed(&s), (Launcher::Slurm, 5, 16, 1));
}

#[test]
fn inner_launcher_wins_over_slurm() {
    // srun torchrun: the Slurm rank is the node's agent, the torchrun rank the worker's.
    let l = env(&[
        ("SLURM_PROCID", "1"),
        ("SLURM_NTASKS", "2"),
        ("RANK", "6"),
        ("WORLD_SIZE", "8"),
        ("LOCAL_RANK", "2"),
    ])
    .unwrap();
    assert_eq!(placed(&l), (Launcher::Torchrun, 6, 8, 2));
    // mpirun inside an sbatch script.
    let l = env(&[
        ("SLURM_PROCID", "0"),
        ("SLURM_NTASKS", "1"),
        ("OMPI_COMM_WORLD_RANK", "1"),
        ("OMPI_COMM_WORLD_SIZE", "2"),
    ])
    .unwrap();
    assert_eq!(placed(&l), (Launcher::OpenMpi, 1, 2, 0));
}

#[test]
fn torchrun_and_mpirun_must_agree() {
    let e = env(&[
        ("RANK", "0"),
        ("WORLD_SIZE", "2"),
        ("OMPI_COMM_WORLD_RANK", "1"),
        ("OMPI_COMM_WORLD_SIZE", "2"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("disagree") && e.contains("OMPI_COMM_WORLD_RANK=1"),
        "{e}"
    );
    let ok = env(&[
        ("RANK", "1"),
        ("WORLD_SIZE", "2"),
        ("OMPI_COMM_WORLD_RANK", "1"),
        ("OMPI_COMM_WORLD_SIZE", "2"),
    ])
    .unwrap();
    assert_eq!(placed(&ok), (Launcher::Torchrun, 1, 2, 0));
}

#[test]
fn malformed_values_are_refused_by_name() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("RANK", "one"), ("WORLD_SIZE", "2")], "RANK=\"one\""),
        (&[("RANK", "-1"), ("WORLD_SIZE", "2")], "RANK=\"-1\""),
        (&[("RANK", "0"), ("WORLD_SIZE", "0")], "WORLD_SIZE=\"0\""),
        (&[("RANK", "2"), ("WORLD_SIZE", "2")], "RANK=\"2\""),
        (&[("RANK", "0")], "WORLD_SIZE"),
        (&[("SLURM_NTASKS", "4")], "SLURM_PROCID"),
        (
            &[("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "2")],
            "LOCAL_RANK=\"2\"",
        ),
        (
            &[("OMPI_COMM_WORLD_RANK", "x"), ("OMPI_COMM_WORLD_SIZE", "2")],
            "OMPI_COMM_WORLD_RANK=\"x\"",
        ),
        (
            &[("MASTER_ADDR", "h"), ("MASTER_PORT", "70000")],
            "MASTER_PORT=\"70000\"",
        ),
        (&[("MASTER_ADDR", "h")], "MASTER_PORT is not"),
    ];
    for (vars, named) in cases {
        let e = env(vars).unwrap_err().to_string();
        assert!(e.contains(named), "{vars:?}: {e}");
    }
}

#[test]
fn master_address_is_read() {
    let l = env(&[
        ("RANK", "0"),
        ("WORLD_SIZE", "2"),
        ("MASTER_ADDR", "node7"),
        ("MASTER_PORT", "29500"),
    ])
    .unwrap();
    assert_eq!(l.master, Some(("node7".to_string(), 29500)));
}

#[test]
fn local_rank_picks_the_gpu() {
    let l = env(&[("RANK", "5"), ("WORLD_SIZE", "8"), ("LOCAL_RANK", "1")]).unwrap();
    let on = |req: &str, visible: usize| l.device_request_among(req, visible);
    assert_eq!(on("cuda", 4).unwrap(), DeviceRequest::Cuda(1));
    assert_eq!(on("cuda", 0).unwrap(), DeviceRequest::Cuda(1));
    assert_eq!(on("cuda:0", 4).unwrap(), DeviceRequest::Cuda(0));
    assert_eq!(on("cuda:3", 1).unwrap(), DeviceRequest::Cuda(3));
    assert_eq!(on("cuda-emu", 1).unwrap(), DeviceRequest::CudaEmu(1));
    assert_eq!(on("cpu", 4).unwrap(), DeviceRequest::Cpu);
    assert!(on("tpu", 4).is_err());
}

#[test]
fn a_process_that_sees_one_gpu_takes_it_whatever_its_local_rank() {
    // `srun --gpus-per-task=1`: each task's CUDA_VISIBLE_DEVICES names its own GPU.
    let l = env(&[
        ("SLURM_PROCID", "3"),
        ("SLURM_NTASKS", "4"),
        ("SLURM_LOCALID", "3"),
    ])
    .unwrap();
    assert_eq!(
        l.device_request_among("cuda", 1).unwrap(),
        DeviceRequest::Cuda(0)
    );
    assert_eq!(l.local_gpu(1), 0);
    assert_eq!(l.local_gpu(4), 3);
    // Fewer GPUs than local ranks, but more than one: cuda:3, whose opening names the count.
    assert_eq!(l.local_gpu(2), 3);
}
