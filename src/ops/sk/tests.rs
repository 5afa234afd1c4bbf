use super::*;
use crate::autograd::{Tape, Var};
use crate::testing::{check_gradients, fresh_seed, randn64};
use crate::{DType, Rng};

#[test]
fn sk_pool_and_mix_gradients() {
    let seed = fresh_seed("sk");
    let mut rng = Rng::new(seed);
    for (n, h, w, c) in [(2, 3, 3, 4), (1, 5, 4, 3), (3, 1, 1, 2)] {
        let u = randn64(&[n, h, w, 2 * c], &mut rng);
        let z = Tensor::randn(&[n, 2 * c], 2.0, DType::F64, &mut rng).unwrap();
        check_gradients("sk_pool", std::slice::from_ref(&u), 40, seed, |t, v| {
            sk_pool(t, &v[0])
        });
        check_gradients("sk_mix", &[u, z], 40, seed, |t, v| sk_mix(t, &v[0], &v[1]));
    }
}

#[test]
fn sk_mix_is_convex_combination() {
    // Equal logits give the average of the two paths.
    let u = Tensor::from_f64(&[1.0, 3.0, 10.0, 20.0], &[1, 1, 1, 4], DType::F64).unwrap();
    let z = Tensor::from_f64(&[0.5, 0.5, 0.5, 0.5], &[1, 4], DType::F64).unwrap();
    assert_eq!(
        sk_mix_forward(&u, &z).unwrap().to_vec_f64().unwrap(),
        vec![5.5, 11.5]
    );
    assert_eq!(
        sk_pool_forward(&u).unwrap().to_vec_f64().unwrap(),
        vec![11.0, 23.0]
    );
}

/// The attention as SkConv wires it, with logits z = zl + [s | −2s] computed from the pooled s
/// (so the mix's gradient reaches the pool), linked or not.
fn attention(t: &mut Tape, v: &[Var], linked: bool) -> Result<Var> {
    use crate::ops::{add, concat_channels, reshape, scale};
    let (u, zl) = (&v[0], &v[1]);
    let (n, c) = (u.shape()[0], u.shape()[3] / 2);
    let (s, link) = match linked {
        true => sk_pool_linked(t, u)?,
        false => (sk_pool(t, u)?, SkLink::default()),
    };
    let s = reshape(t, &s, &[n, 1, 1, c])?;
    let s2 = scale(t, &s, -2.0)?;
    let both = concat_channels(t, &[&s, &s2])?;
    let both = reshape(t, &both, &[n, 2 * c])?;
    let z = add(t, zl, &both)?;
    match linked {
        true => sk_mix_linked(t, u, &z, &link),
        false => sk_mix(t, u, &z),
    }
}

#[test]
fn linked_pair_gradients_match_finite_differences_and_the_unlinked_pair() {
    let seed = fresh_seed("sk_linked");
    let mut rng = Rng::new(seed);
    for (n, h, w, c) in [(2, 3, 3, 4), (1, 2, 5, 3)] {
        let u = randn64(&[n, h, w, 2 * c], &mut rng);
        let z = Tensor::randn(&[n, 2 * c], 2.0, DType::F64, &mut rng).unwrap();
        let inputs = [u, z];
        check_gradients("sk linked pair", &inputs, 40, seed, |t, v| {
            attention(t, v, true)
        });
        // The same gradient as the unlinked pair (where the tape adds the two terms of du).
        let grads = |linked: bool| {
            let mut t = Tape::new();
            let v: Vec<Var> = inputs.iter().map(|x| t.leaf(x.clone())).collect();
            let y = attention(&mut t, &v, linked).unwrap();
            let loss = crate::ops::sum(&mut t, &y).unwrap();
            let g = t
                .backward(&loss, &mut crate::params::ParamStore::new(DType::F64, 0))
                .unwrap();
            g.get(&v[0]).unwrap().to_vec_f64().unwrap()
        };
        let (a, b) = (grads(true), grads(false));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "linked vs unlinked du differ by {worst}");
    }
}

#[test]
fn backward_du_needs_a_gradient() {
    let err = sk_backward_du(None, None, &[1, 2, 2, 4]).unwrap_err();
    assert!(err.to_string().contains("neither dy nor ds"), "{err}");
}
