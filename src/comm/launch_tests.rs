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
    assert_eq!(l.device_request("cuda").unwrap(), DeviceRequest::Cuda(1));
    assert_eq!(l.device_request("cuda:0").unwrap(), DeviceRequest::Cuda(0));
    assert_eq!(l.device_request("cpu").unwrap(), DeviceRequest::Cpu);
    assert!(l.device_request("tpu").is_err());
}
