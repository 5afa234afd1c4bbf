use super::*;
use crate::testing::{check_gradients, fresh_seed, randn64};
use crate::Rng;

#[test]
fn concat_and_narrow_gradients() {
    let seed = fresh_seed("channels");
    let mut rng = Rng::new(seed);
    let a = randn64(&[2, 3, 3, 2], &mut rng);
    let b = randn64(&[2, 3, 3, 5], &mut rng);
    check_gradients("concat", &[a.clone(), b.clone()], 40, seed, |t, v| {
        concat_channels(t, &[&v[0], &v[1]])
    });
    for (s, l) in [(0, 3), (2, 3), (4, 1), (0, 5)] {
        check_gradients("narrow", std::slice::from_ref(&b), 40, seed, |t, v| {
            narrow_channels(t, &v[0], s, l)
        });
    }
    let y = concat_forward(&[&a, &b]).unwrap();
    assert_eq!(y.shape(), &[2, 3, 3, 7]);
    assert_eq!(
        narrow_forward(&y, 2, 5).unwrap().to_vec_f64().unwrap(),
        b.to_vec_f64().unwrap()
    );
}

#[test]
fn bad_ranges_are_errors() {
    let a = randn64(&[2, 3], &mut Rng::new(0));
    assert!(narrow_forward(&a, 2, 2)
        .unwrap_err()
        .to_string()
        .contains("narrow_channels"));
    let b = randn64(&[3, 3], &mut Rng::new(0));
    assert!(concat_forward(&[&a, &b]).is_err());
}
