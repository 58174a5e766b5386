//! Tail probabilities the detectors need: Poisson, negative binomial and the standard normal.
//!
//! Written out here rather than pulled from a statistics crate because the detector needs only
//! three functions, and each is checked against published values in the tests below. All of them
//! are accurate in the *far* upper tail (p down to 1e-30), which is the only region an alert
//! threshold ever looks at: the series expansions are chosen so small results are computed
//! directly instead of as `1 - (something close to 1)`.

use std::f64::consts::PI;

/// Relative precision the series and continued fractions iterate to.
const EPS: f64 = 1e-15;
/// Iteration cap; the expansions converge in far fewer steps for the arguments we use.
const MAX_ITER: usize = 10_000;
/// Smallest positive normal-ish number guarding divisions in the continued fractions.
const TINY: f64 = 1e-300;

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, n = 9; about 15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the approximation in the region where it is accurate.
        (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x)
    } else {
        let x = x - 1.0;
        let t = x + G + 0.5;
        let mut a = C[0];
        for (i, c) in C.iter().enumerate().skip(1) {
            a += c / (x + i as f64);
        }
        0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
    }
}

/// Regularised lower incomplete gamma `P(a, x)`.
fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let log_prefix = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        // Series: converges fast here and yields small results without cancellation.
        let mut ap = a;
        let mut del = 1.0 / a;
        let mut sum = del;
        for _ in 0..MAX_ITER {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * EPS {
                break;
            }
        }
        (sum.ln() + log_prefix).exp().min(1.0)
    } else {
        // Continued fraction for Q(a, x) (modified Lentz).
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..MAX_ITER {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < EPS {
                break;
            }
        }
        (1.0 - (log_prefix.exp() * h)).clamp(0.0, 1.0)
    }
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Regularised incomplete beta `I_x(a, b)`.
fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let log_bt = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        (log_bt.exp() * beta_cf(a, b, x) / a).clamp(0.0, 1.0)
    } else {
        (1.0 - log_bt.exp() * beta_cf(b, a, 1.0 - x) / b).clamp(0.0, 1.0)
    }
}

/// Upper tail of the Poisson distribution: `P(X ≥ k | mean)`.
///
/// Uses `P(X ≥ k) = P(k, mean)`, the regularised lower incomplete gamma function.
pub fn poisson_sf(k: u32, mean: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if mean <= 0.0 {
        return 0.0;
    }
    gamma_p(f64::from(k), mean)
}

/// Upper tail of the negative binomial with the given mean and size `r` (variance
/// `mean + mean² / r`): `P(X ≥ k)`.
///
/// Uses `P(X ≥ k) = I_q(k, r)` with `q = mean / (r + mean)`. A non-finite or huge `r` is the
/// Poisson limit.
pub fn negbin_sf(k: u32, mean: f64, size: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if mean <= 0.0 {
        return 0.0;
    }
    if !size.is_finite() || size > 1e8 {
        return poisson_sf(k, mean);
    }
    let size = size.max(1e-6);
    beta_inc(f64::from(k), size, mean / (size + mean))
}

/// Complementary error function (Chebyshev fit, relative error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ans = t * poly.exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
}

/// Upper tail of the standard normal: `P(Z ≥ z)`.
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!(ln_gamma(1.0).abs() < 1e-13);
        assert!(ln_gamma(2.0).abs() < 1e-13);
        assert!(close(ln_gamma(5.0), 24.0_f64.ln(), 1e-13));
        assert!(close(ln_gamma(11.0), 3_628_800.0_f64.ln(), 1e-13));
        assert!(close(ln_gamma(0.5), PI.sqrt().ln(), 1e-12));
    }

    #[test]
    fn poisson_tail_matches_known_values() {
        // Values from R: ppois(k - 1, lambda, lower.tail = FALSE).
        assert!(close(poisson_sf(1, 0.5), 0.393_469_340_287_366_6, 1e-12));
        assert!(close(poisson_sf(5, 1.0), 0.003_659_846_827_343_712, 1e-10));
        assert!(close(
            poisson_sf(10, 3.0),
            0.001_102_488_130_115_375_5,
            1e-9
        ));
        assert!(close(
            poisson_sf(20, 10.0),
            0.003_454_341_975_856_700_7,
            1e-9
        ));
        assert!(close(poisson_sf(3, 5.0), 0.875_347_980_516_918_8, 1e-9));
        // Far tail: 30 events when 1 is expected, e^-1 / 30! * (1 + 1/31 + …).
        let tail: f64 = (0..20)
            .map(|j| 1.0 / (31..31 + j).map(f64::from).product::<f64>())
            .sum();
        let far = (-1.0_f64).exp() / (1..=30).map(f64::from).product::<f64>() * tail;
        assert!(close(poisson_sf(30, 1.0), far, 1e-6));
        assert_eq!(poisson_sf(0, 2.0), 1.0);
        assert_eq!(poisson_sf(3, 0.0), 0.0);
    }

    #[test]
    fn poisson_tail_is_monotone_in_k() {
        let mut last = 1.0;
        for k in 0..60 {
            let p = poisson_sf(k, 7.5);
            assert!(p <= last + 1e-15, "k={k}");
            last = p;
        }
    }

    #[test]
    fn negative_binomial_tail_matches_known_values() {
        // Size 1 is the geometric: P(X ≥ k) = q^k with q = mean / (1 + mean).
        assert!(close(
            negbin_sf(3, 2.0, 1.0),
            (2.0_f64 / 3.0).powi(3),
            1e-10
        ));
        // Against a direct sum of the pmf: 1 - Σ_{x<5} Γ(x+r)/(Γ(r) x!) p^r (1-p)^x.
        let (mean, r) = (3.0_f64, 2.5_f64);
        let p = r / (r + mean);
        let below: f64 = (0..5)
            .map(|x| {
                let x = f64::from(x);
                (ln_gamma(x + r) - ln_gamma(r) - ln_gamma(x + 1.0)
                    + r * p.ln()
                    + x * (1.0 - p).ln())
                .exp()
            })
            .sum();
        assert!(close(negbin_sf(5, mean, r), 1.0 - below, 1e-9));
        // A huge size is the Poisson.
        assert!(close(negbin_sf(10, 3.0, 1e9), poisson_sf(10, 3.0), 1e-9));
        assert!(close(negbin_sf(10, 3.0, 1e6), poisson_sf(10, 3.0), 1e-4));
        // Overdispersion fattens the tail.
        assert!(negbin_sf(10, 3.0, 5.0) > poisson_sf(10, 3.0));
    }

    #[test]
    fn normal_tail_matches_known_values() {
        assert!(close(normal_sf(0.0), 0.5, 1e-7));
        assert!(close(normal_sf(1.959_963_985), 0.025, 1e-6));
        assert!(close(normal_sf(3.0), 0.001_349_898_031_630_095, 1e-6));
        assert!(close(normal_sf(-1.0), 0.841_344_746_068_542_9, 1e-6));
        assert!(close(normal_sf(6.0), 9.865_876_450_377e-10, 1e-5));
    }
}
