//! The packed batch statistics of synchronised batch norm (kernels/moments.cu) against the CPU
//! reference on the same inputs: pack, combine (of several ranks' rows, counts uneven and one
//! above 2^24, so the count's high half is used) and scale.

use crate::comm::concat_rows;
use crate::ops::moments::{moments_combine, moments_pack, moments_scale};
use crate::testing::device::{device_test, rand};
use crate::testing::{assert_close, fresh_seed, tolerance};
use crate::{DType, Device, Rng, Tensor};

fn moments_pack_combine_and_scale_match_the_cpu(dev: Device) {
    let mut rng = Rng::new(fresh_seed("moments parity"));
    let c = 37;
    let rows = [5usize, 1, (1 << 24) + 3];
    let cpu = |t: &Tensor| t.to_device(Device::Cpu).unwrap();
    let up = |t: &Tensor| t.to_device(dev).unwrap();
    let (mut packed_cpu, mut packed_gpu) = (Vec::new(), Vec::new());
    for &n in &rows {
        // Means far from zero against the spread, as the activations BN sees.
        let mean = rand(&[c], DType::F32, &mut rng, 1.0, 4.0);
        let var = rand(&[c], DType::F32, &mut rng, 0.2, 1.0);
        let want = moments_pack(&mean, &var, n).unwrap();
        let got = cpu(&moments_pack(&up(&mean), &up(&var), n).unwrap());
        assert_eq!(got.shape(), &[1, 2 * c + 2]);
        // One product per element, the same in both.
        assert_close(&format!("pack of {n} rows"), &got, &want, 0.0);
        packed_cpu.push(want);
        packed_gpu.push(got);
    }
    let all_cpu = concat_rows(&packed_cpu).unwrap();
    let all_gpu = up(&concat_rows(&packed_gpu).unwrap());
    // Both combine in f64 from the same f32 inputs and round once to f32.
    let tol = tolerance(DType::F32, 1, 1);
    let want = moments_combine(&all_cpu, rows[1]).unwrap();
    let got = moments_combine(&all_gpu, rows[1]).unwrap();
    assert_close("mean", &cpu(&got.mean), &want.mean, tol);
    assert_close("var", &cpu(&got.var), &want.var, tol);
    assert_close("var_u", &cpu(&got.var_unbiased), &want.var_unbiased, tol);
    assert_close("share", &cpu(&got.share), &want.share, tol);
    let s = rand(&[2, c], DType::F32, &mut rng, 1.0, 0.0);
    let want = moments_scale(&s, &want.share).unwrap();
    let got = moments_scale(&up(&s), &got.share).unwrap();
    assert_close("scale", &cpu(&got), &want, tol);
}
device_test!(moments_pack_combine_and_scale_match_the_cpu);
