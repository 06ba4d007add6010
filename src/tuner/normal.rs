//! The standard normal distribution: density, CDF, quantile, and the log of the mass of
//! an interval — computed in whichever tail keeps precision. Used by the Parzen
//! estimator (truncated normal kernels) and the GP's expected improvement.

use std::f64::consts::{FRAC_1_SQRT_2, PI};
use std::sync::OnceLock;

/// `ln √(2π)`.
pub const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

pub fn pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * PI).sqrt()
}

/// Φ(z), through `erfc` so the lower tail keeps relative precision.
pub fn cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z * FRAC_1_SQRT_2)
}

/// Grid points per unit of the table behind [`lower_tail`].
const TAIL_STEPS: f64 = 256.0;

/// Terms of the Taylor series kept per grid point (degree 6).
const TAIL_TERMS: usize = 7;

/// At `x = −k/256` for `x` in `[−8.5, 0]`: the Taylor coefficients of Φ about `x`,
/// `Φ(x)` then `Φ⁽ⁿ⁾(x)/n! = (−1)ⁿ⁻¹ Heₙ₋₁(x) φ(x) / n!` (Hermite polynomials).
static TAIL_TABLE: OnceLock<Vec<[f64; TAIL_TERMS]>> = OnceLock::new();

/// Φ(t) for `t` in `[−8.5, 0]`, as [`cdf`] gives it (to a few ulp) at a small part of
/// the cost: the degree-6 Taylor polynomial about the nearest of 2,177 tabulated points,
/// one Horner chain. With `|t − x| ≤ 1/512` the first term left out is below 1e-16 of
/// Φ(t) even at `t = −8.5`. A TPE ask over a long history evaluates Φ some ten thousand
/// times (each kernel's truncation to its range): with `erfc` that was a third of the
/// ask; with the series' coefficients built per call (the Hermite recurrence) a quarter.
fn lower_tail(t: f64) -> f64 {
    let table = TAIL_TABLE.get_or_init(|| {
        (0..=(8.5 * TAIL_STEPS) as usize)
            .map(|k| {
                let x = -(k as f64) / TAIL_STEPS;
                let mut coefficients = [0.0; TAIL_TERMS];
                coefficients[0] = cdf(x);
                let (mut he_before, mut he) = (0.0, 1.0);
                let mut factorial = 1.0;
                for (n, c) in coefficients.iter_mut().enumerate().skip(1) {
                    factorial *= n as f64;
                    let sign = if n % 2 == 1 { 1.0 } else { -1.0 };
                    *c = sign * he * pdf(x) / factorial;
                    (he_before, he) = (he, x * he - (n - 1) as f64 * he_before);
                }
                coefficients
            })
            .collect()
    });
    let k = ((-t * TAIL_STEPS).round() as usize).min(table.len() - 1);
    let d = t + k as f64 / TAIL_STEPS;
    table[k].iter().rev().fold(0.0, |acc, &c| acc * d + c)
}

/// `ln(Φ(b) − Φ(a))` for `a ≤ b`, evaluated in the tail farther from zero so that
/// intervals deep in either tail do not cancel to zero.
pub fn log_mass(a: f64, b: f64) -> f64 {
    if a >= 0.0 {
        // Upper tail: Φ(b) − Φ(a) = Φ(−a) − Φ(−b).
        (cdf(-a) - cdf(-b)).ln()
    } else if b <= 0.0 {
        (cdf(b) - cdf(a)).ln()
    } else {
        // ln(1 − t) for the tails' total t: below 1e-4 the series to t⁴ is exact in f64
        // (the next term is under 2e-17 of it) and costs no logarithm, which mattered for
        // the many components of a long TPE history that sit near an edge of the range.
        let t = lost_tails(a, b);
        if t < 1e-4 {
            -t * (1.0 + t * (0.5 + t * (1.0 / 3.0 + t * 0.25)))
        } else {
            (-t).ln_1p()
        }
    }
}

/// `Φ(b) − Φ(a)` for `a < 0 < b`: one minus the two tails, with no cancellation.
pub fn straddling_mass(a: f64, b: f64) -> f64 {
    1.0 - lost_tails(a, b)
}

/// `Φ(a) + Φ(−b)` for `a < 0 < b`. A tail beyond 8.5σ holds less than 1e-17 and is taken
/// as 0 (the common case for the narrow kernels of a long TPE history).
fn lost_tails(a: f64, b: f64) -> f64 {
    let tail = |t: f64| if t < -8.5 { 0.0 } else { lower_tail(t) };
    tail(a) + tail(-b)
}

/// Φ⁻¹(p) for `p` in (0, 1): Acklam's rational approximation (relative error 1.2e-9),
/// polished with one Halley step on `erfc` to near machine precision.
pub fn quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        let r = (-2.0 * q.ln()).sqrt();
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    let x = if p < 0.024_25 {
        tail(p)
    } else if p > 1.0 - 0.024_25 {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let e = cdf(x) - p;
    let u = e * (2.0 * PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_inverts_cdf_across_the_range() {
        for &p in &[1e-12, 1e-6, 0.01, 0.3, 0.5, 0.77, 0.99, 1.0 - 1e-9] {
            let z = quantile(p);
            assert!(
                (cdf(z) - p).abs() <= 1e-14_f64.max(p * 1e-9),
                "p {p}: z {z}"
            );
        }
        assert!((quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
    }

    #[test]
    fn lower_tail_agrees_with_erfc() {
        let mut worst: f64 = 0.0;
        for i in 0..=170_000 {
            let t = -(i as f64) * 5e-5;
            let (fast, exact) = (lower_tail(t), cdf(t));
            worst = worst.max(((fast - exact) / exact).abs());
        }
        assert!(worst < 2e-14, "worst relative error {worst:e}");
    }

    #[test]
    fn log_mass_survives_deep_tails() {
        assert!((log_mass(-1.0, 1.0) - 0.682_689_492_137_085_9f64.ln()).abs() < 1e-12);
        let deep = log_mass(20.0, 21.0);
        // ln Φ(−20) ≈ −203.917
        assert!((deep + 203.917).abs() < 0.01, "{deep}");
        assert!((log_mass(-21.0, -20.0) - deep).abs() < 1e-9);
    }

    /// Small tails take the series for ln(1 − t); it must agree with `ln_1p` on both sides
    /// of the switch at t = 1e-4, to the tails' own precision (`lower_tail`'s 2e-14).
    #[test]
    fn log_mass_series_for_small_tails_is_exact() {
        for (a, b) in [
            (-3.6, 4.0),
            (-3.8, 8.0),
            (-4.5, 5.0),
            (-6.0, 7.0),
            (-8.0, 8.4),
        ] {
            let t = cdf(a) + cdf(-b);
            let exact = (-t).ln_1p();
            assert!(
                (log_mass(a, b) - exact).abs() <= 2e-14 * exact.abs(),
                "{a} {b}: t = {t}"
            );
        }
    }
}
