//! The random-resized crop's distribution against the paper's (torchvision's): each of up to
//! 10 attempts draws the area fraction s ~ U[0.08, 1] and u = ln(aspect) ~ U[ln 3/4, ln 4/3]
//! and keeps the box if it fits. On a square picture a box fits iff s <= e^{-|u|}, so the kept
//! (s, u) are uniform on that region (the centre fallback after 10 misses has probability
//! (1 - p)^10 ~ 3e-9, and is included). Integrating the region gives each histogram bin's
//! probability in closed form; the measured histograms must pass a chi-square test whose
//! critical value is the 1e-6 upper quantile (Wilson-Hilferty), and the same samples must fail
//! it against a wrong model (aspect uniform instead of log-uniform), so the test has power.

use crate::data::augment::crop::random_crop_box;
use crate::testing::fresh_seed;
use crate::Rng;

const A: f64 = 0.08;
const BINS: usize = 10;
/// 2^15: crop sides of thousands of pixels, so rounding them moves s by < 1e-4.
const SIDE: usize = 1 << 15;

fn l() -> f64 {
    (4.0f64 / 3.0).ln()
}

/// Unnormalised CDF of the kept area fraction: density 2 min(L, -ln s) on [A, 1].
fn scale_cdf(s: f64) -> f64 {
    let (l, knee) = (l(), 0.75f64);
    let anti = |t: f64| t - t * t.ln(); // the antiderivative of -ln t
    if s <= knee {
        2.0 * l * (s - A)
    } else {
        2.0 * l * (knee - A) + 2.0 * (anti(s) - anti(knee))
    }
}

/// Unnormalised CDF of the kept u = ln(aspect): density e^{-|u|} - A on [-L, L].
fn log_aspect_cdf(u: f64) -> f64 {
    let l = l();
    if u <= 0.0 {
        u.exp() - (-l).exp() - A * (u + l)
    } else {
        log_aspect_cdf(0.0) + (1.0 - (-u).exp()) - A * u
    }
}

/// Bin probabilities of a CDF over `BINS` equal bins of [lo, hi].
fn probs(cdf: &dyn Fn(f64) -> f64, lo: f64, hi: f64) -> Vec<f64> {
    let edge = |k: usize| lo + (hi - lo) * k as f64 / BINS as f64;
    let z = cdf(hi) - cdf(lo);
    (0..BINS)
        .map(|k| (cdf(edge(k + 1)) - cdf(edge(k))) / z)
        .collect()
}

fn histogram(xs: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    let mut h = vec![0f64; BINS];
    for &x in xs {
        let k = (((x - lo) / (hi - lo)) * BINS as f64).floor() as isize;
        h[k.clamp(0, BINS as isize - 1) as usize] += 1.0;
    }
    h
}

fn chi_square(counts: &[f64], p: &[f64]) -> f64 {
    let n: f64 = counts.iter().sum();
    counts
        .iter()
        .zip(p)
        .map(|(c, p)| (c - n * p).powi(2) / (n * p))
        .sum()
}

/// Upper 1e-6 quantile of chi-square with `k` degrees of freedom (Wilson-Hilferty; z of 1e-6
/// one-sided is 4.7534).
fn critical(k: usize) -> f64 {
    let k = k as f64;
    let c = 2.0 / (9.0 * k);
    k * (1.0 - c + 4.7534 * c.sqrt()).powi(3)
}

#[test]
fn random_crop_scale_and_aspect_match_the_papers_distribution() {
    let mut rng = Rng::new(fresh_seed("random_crop_scale_and_aspect_match_the_papers"));
    let n = 200_000;
    let (mut s, mut u) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let aspect = (0.75, 4.0 / 3.0);
    for _ in 0..n {
        let b = random_crop_box(SIDE, SIDE, (A, 1.0), aspect, &mut rng);
        s.push((b.h * b.w) as f64 / (SIDE * SIDE) as f64);
        u.push((b.w as f64 / b.h as f64).ln());
    }
    let l = l();
    let (hs, hu) = (histogram(&s, A, 1.0), histogram(&u, -l, l));
    let crit = critical(BINS - 1);
    let cs = chi_square(&hs, &probs(&scale_cdf, A, 1.0));
    let cu = chi_square(&hu, &probs(&log_aspect_cdf, -l, l));
    assert!(
        cs < crit,
        "area fraction: chi-square {cs:.1} >= {crit:.1}; histogram {hs:?}"
    );
    assert!(
        cu < crit,
        "log aspect: chi-square {cu:.1} >= {crit:.1}; histogram {hu:?}"
    );
    // Power: aspect uniform in [3/4, 4/3] (not log-uniform), with the same fit rule.
    let wrong = |x: f64| {
        // CDF in u of r = e^u ~ U[3/4, 4/3] restricted to s <= e^{-|u|}: density
        // e^u (e^{-|u|} - A); integrate numerically.
        let steps = 2000;
        let h = (x + l) / steps as f64;
        (0..steps)
            .map(|i| {
                let t = -l + (i as f64 + 0.5) * h;
                t.exp() * ((-t.abs()).exp() - A) * h
            })
            .sum::<f64>()
    };
    let cw = chi_square(&hu, &probs(&wrong, -l, l));
    assert!(
        cw > crit,
        "the test cannot tell log-uniform from uniform aspect ({cw:.1})"
    );
}
