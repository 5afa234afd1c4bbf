//! Tensor memory accounting, exactly: this binary holds a single test, so no other test
//! allocates tensors while it counts.

use simclr::tensor::memory::{current_bytes, peak_bytes, reset_peak};
use simclr::{DType, Device, Tensor};

#[test]
fn tensor_bytes_are_counted_from_creation_to_last_drop() {
    let cpu = Device::Cpu;
    let base = current_bytes(cpu);
    reset_peak(cpu);

    let a = Tensor::zeros(&[1000, 250], DType::F32, cpu).unwrap();
    assert_eq!(current_bytes(cpu), base + 1_000_000);
    let view = a.reshape(&[250_000]).unwrap();
    let shared = a.clone();
    assert_eq!(
        current_bytes(cpu),
        base + 1_000_000,
        "views and clones share"
    );

    // Copy-on-write gives `b` its own storage, counted on top.
    let mut b = shared;
    b.cpu_vec_mut::<f32>("test").unwrap()[0] = 1.0;
    assert_eq!(current_bytes(cpu), base + 2_000_000);
    drop(a);
    assert_eq!(
        current_bytes(cpu),
        base + 2_000_000,
        "the view keeps a's storage"
    );
    drop(view);
    assert_eq!(current_bytes(cpu), base + 1_000_000);
    let h = Tensor::zeros(&[100], DType::BF16, cpu).unwrap();
    assert_eq!(current_bytes(cpu), base + 1_000_200);
    drop((b, h));
    assert_eq!(current_bytes(cpu), base);
    assert_eq!(peak_bytes(cpu), base + 2_000_000);
    reset_peak(cpu);
    assert_eq!(peak_bytes(cpu), base);
}
