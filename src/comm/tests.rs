use super::*;
use crate::autograd::Tape;
use crate::ops::moments::{combine_moments, Moments};
use crate::testing::{assert_close, bits, fresh_seed, relative_error, tolerance};
use crate::{DType, Rng, Tensor};

fn randn(shape: &[usize], dtype: DType, rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, 1.0, dtype, rng).unwrap()
}

/// The moments of [M, C] rows by the two-pass formulas, in f64.
fn two_pass(rows: &[f64], c: usize) -> Moments {
    let m = rows.len() / c;
    let mean: Vec<f64> = (0..c)
        .map(|j| (0..m).map(|i| rows[i * c + j]).sum::<f64>() / m as f64)
        .collect();
    let m2 = (0..c)
        .map(|j| (0..m).map(|i| (rows[i * c + j] - mean[j]).powi(2)).sum())
        .collect();
    Moments { count: m, mean, m2 }
}

#[test]
fn combined_moments_equal_those_of_the_concatenation() {
    let seed = fresh_seed("combine_moments");
    let mut rng = Rng::new(seed);
    let c = 5;
    for parts in [vec![3, 4], vec![1, 0, 6, 2], vec![7], vec![2, 2, 2, 9, 1]] {
        // A large common offset: sums of squares would lose every digit of the spread.
        let rows: Vec<Vec<f64>> = parts
            .iter()
            .map(|&m| (0..m * c).map(|_| 1e6 + rng.normal()).collect())
            .collect();
        let each: Vec<Moments> = rows.iter().map(|r| two_pass(r, c)).collect();
        let got = combine_moments(&each).unwrap();
        let want = two_pass(&rows.concat(), c);
        assert_eq!(got.count, want.count);
        let m: usize = parts.iter().sum();
        let tol = tolerance(DType::F64, m, 2);
        assert!(relative_error(&got.mean, &want.mean) <= tol, "{parts:?}");
        // The spread is 1e-6 of the values: relative to M2, the error bound grows by that ratio.
        let err = relative_error(&got.m2, &want.m2);
        assert!(err <= tol * 1e6, "{parts:?}: M2 relative error {err:e}");
    }
}

#[test]
fn thread_group_collectives_equal_plain_sums_and_concatenations() {
    let seed = fresh_seed("thread_group_collectives");
    for world in [1, 2, 3, 5] {
        for dtype in [DType::F32, DType::F64] {
            // Fresh inputs per rank; several shapes with odd channel counts, uneven rows.
            let shapes = [vec![3, 7], vec![5], vec![2, 3, 1], vec![1, 13]];
            let inputs: Vec<Vec<Tensor>> = (0..world)
                .map(|r| {
                    let mut rng = Rng::derive(seed, r as u64);
                    shapes.iter().map(|s| randn(s, dtype, &mut rng)).collect()
                })
                .collect();
            let gather_in: Vec<Tensor> = (0..world)
                .map(|r| randn(&[r + 1, 3], dtype, &mut Rng::derive(seed, 100 + r as u64)))
                .collect();
            let out = ThreadGroup::run(world, |comm| {
                let r = comm.rank();
                let sums = comm.all_reduce_sum(&inputs[r])?;
                let gathered = comm.all_gather(&gather_in[r])?;
                comm.barrier()?;
                let b = comm.broadcast(&inputs[r][0])?;
                Ok((sums, gathered, b))
            })
            .unwrap();
            // Sums in rank order: bit-identical to the sequential sum, on every rank.
            for (i, _) in shapes.iter().enumerate() {
                let mut want = inputs[0][i].clone();
                for inp in &inputs[1..] {
                    want = crate::ops::elementwise::add_forward(&want, &inp[i]).unwrap();
                }
                for (sums, _, _) in &out {
                    assert_eq!(bits(&sums[i]), bits(&want), "world {world} tensor {i}");
                    assert_eq!(sums[i].dtype(), dtype);
                }
            }
            let want = concat_rows(&gather_in).unwrap();
            for (r, (_, g, b)) in out.iter().enumerate() {
                assert_eq!(g.shape(), want.shape());
                assert_eq!(bits(g), bits(&want), "gather, rank {r}");
                assert_eq!(bits(b), bits(&inputs[0][0]), "broadcast, rank {r}");
            }
        }
    }
}

#[test]
fn mismatched_collectives_are_errors_not_hangs() {
    let x = Tensor::zeros(&[2, 3], DType::F32, crate::Device::Cpu).unwrap();
    let e = ThreadGroup::run(2, |comm| {
        if comm.rank() == 0 {
            comm.all_reduce_sum(std::slice::from_ref(&x)).map(|_| ())
        } else {
            comm.all_gather(&x).map(|_| ())
        }
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("called"), "{e}");
    let y = Tensor::zeros(&[3, 2], DType::F32, crate::Device::Cpu).unwrap();
    let e = ThreadGroup::run(2, |comm| {
        let t = if comm.rank() == 0 { &x } else { &y };
        comm.all_reduce_sum(std::slice::from_ref(t)).map(|_| ())
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("rank 1 passed [3, 2]"), "{e}");
    // A rank that fails on its own: the group reports its error, not the others' "left".
    let e = ThreadGroup::run(3, |comm| {
        if comm.rank() == 2 {
            return Err(crate::Error::Config("rank 2's own failure".into()));
        }
        comm.barrier()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("rank 2's own failure"), "{e}");
    assert!(ThreadGroup::new(0).is_err());
}

#[test]
fn single_is_the_identity() {
    let mut rng = Rng::new(fresh_seed("single"));
    let x = randn(&[4, 3], DType::F32, &mut rng);
    let s = Single;
    assert_eq!((s.rank(), s.world_size()), (0, 1));
    assert_eq!(
        bits(&s.all_reduce_sum(std::slice::from_ref(&x)).unwrap()[0]),
        bits(&x)
    );
    assert_eq!(bits(&s.all_gather(&x).unwrap()), bits(&x));
    assert_eq!(bits(&s.broadcast(&x).unwrap()), bits(&x));
    s.barrier().unwrap();
}

#[test]
fn rows_narrow_and_concatenate() {
    let mut rng = Rng::new(fresh_seed("rows"));
    let x = randn(&[5, 2, 3], DType::F64, &mut rng);
    let parts = [
        narrow_rows(&x, 0, 2).unwrap(),
        narrow_rows(&x, 2, 0).unwrap(),
        narrow_rows(&x, 2, 3).unwrap(),
    ];
    assert_eq!(parts[2].shape(), [3, 2, 3]);
    assert_eq!(parts[1].shape(), [0, 2, 3]);
    assert_eq!(bits(&concat_rows(&parts).unwrap()), bits(&x));
    let v = x.to_vec_f64().unwrap();
    assert_eq!(parts[2].to_vec_f64().unwrap(), v[12..].to_vec());
    assert!(narrow_rows(&x, 4, 2).is_err());
    let bad = randn(&[1, 3, 2], DType::F64, &mut rng);
    assert!(concat_rows(&[x, bad]).is_err());
}

#[test]
fn gathered_views_are_the_global_batch_and_gradients_return_to_their_rows() {
    let seed = fresh_seed("gather_views");
    let counts = [1usize, 3, 2];
    let d = 4;
    let z: Vec<Tensor> = counts
        .iter()
        .enumerate()
        .map(|(r, &n)| randn(&[2 * n, d], DType::F64, &mut Rng::derive(seed, r as u64)))
        .collect();
    let total: usize = counts.iter().sum();
    let weights = randn(&[2 * total, d], DType::F64, &mut Rng::derive(seed, 9));
    let out = ThreadGroup::run(3, |comm| {
        let r = comm.rank();
        let mut tape = Tape::new();
        let zv = tape.leaf(z[r].clone());
        let g = crate::ops::gather_views::gather_views(&mut tape, &comm, &zv)?;
        let w = tape.constant(weights.clone());
        let p = crate::ops::mul(&mut tape, &g, &w)?;
        let loss = crate::ops::sum(&mut tape, &p)?;
        let grads = tape.backward(&loss, &mut crate::params::ParamStore::new(DType::F64, 0))?;
        Ok((g.value().clone(), grads.get(&zv).unwrap().clone()))
    })
    .unwrap();
    let a: Vec<Tensor> = z
        .iter()
        .zip(counts)
        .map(|(t, n)| narrow_rows(t, 0, n).unwrap())
        .collect();
    let b: Vec<Tensor> = z
        .iter()
        .zip(counts)
        .map(|(t, n)| narrow_rows(t, n, n).unwrap())
        .collect();
    let want = concat_rows(&[concat_rows(&a).unwrap(), concat_rows(&b).unwrap()]).unwrap();
    let mut offset = 0;
    for (r, (g, dz)) in out.iter().enumerate() {
        assert_eq!(bits(g), bits(&want), "rank {r}");
        let n = counts[r];
        let mine = concat_rows(&[
            narrow_rows(&weights, offset, n).unwrap(),
            narrow_rows(&weights, total + offset, n).unwrap(),
        ])
        .unwrap();
        assert_close("d z", dz, &mine, 0.0);
        offset += n;
    }
}
