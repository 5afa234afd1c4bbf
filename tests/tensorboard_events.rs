//! TensorBoard event files: the committed fixture is exactly what our writer produces for a fixed
//! series, and reading it back gives the scalars TensorBoard itself read from it
//! (`tests/fixtures/tensorboard/check_with_tensorboard.py`, run once with the real `tensorboard`
//! package; its output is committed as `expected.txt`, so CI needs no TensorBoard).
//! `SIMCLR_WRITE_FIXTURES=1` rewrites the fixture.

use simclr::train::tensorboard::{frame, read_scalars, scalar_event, version_event};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tensorboard")
}

/// The fixture's series: a loss, a learning rate and a kNN accuracy over a few steps.
fn fixture_bytes() -> Vec<u8> {
    let t0 = 1_700_000_000.0;
    let mut b = frame(&version_event(t0));
    for step in 1..=5i64 {
        let s = step as f32;
        let wall = t0 + step as f64 * 0.5;
        b.extend(frame(&scalar_event(wall, step * 10, "loss", 4.0 / s)));
        b.extend(frame(&scalar_event(wall, step * 10, "lr", 0.1 * s)));
    }
    b.extend(frame(&scalar_event(t0 + 3.0, 50, "knn_top1", 0.375)));
    b
}

#[test]
fn the_fixture_is_what_the_writer_writes() {
    let path = dir().join("events.out.tfevents.1700000000.simclr");
    if std::env::var_os("SIMCLR_WRITE_FIXTURES").is_some() {
        std::fs::write(&path, fixture_bytes()).unwrap();
    }
    assert_eq!(std::fs::read(&path).unwrap(), fixture_bytes());
}

#[test]
fn our_reader_agrees_with_tensorboard_on_the_fixture() {
    let scalars = read_scalars(&dir().join("events.out.tfevents.1700000000.simclr")).unwrap();
    let mut ours: Vec<String> = scalars
        .iter()
        .map(|(step, tag, v, _)| format!("{tag} {step} {v:.6}"))
        .collect();
    ours.sort();
    let expected = std::fs::read_to_string(dir().join("expected.txt")).unwrap();
    let mut theirs: Vec<String> = expected.lines().map(String::from).collect();
    theirs.sort();
    assert_eq!(ours.len(), 11);
    assert_eq!(ours, theirs);
}
