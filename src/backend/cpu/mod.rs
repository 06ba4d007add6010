//! The CPU backend: always compiled, the reference for every CUDA kernel and the fallback.
//!
//! Ops are generic over [`Real`] so that the very code that trains in f32 is the code the
//! f64 finite-difference checks differentiate. Each op file pairs `*_forward` with
//! `*_backward` and keeps a plain-loop reference where the fast path is not itself a loop.

pub mod activation;
pub mod attention;
pub mod augment;
pub mod conv;
pub mod dropout;
pub mod ensemble;
mod gemm;
pub mod linear;
pub mod loss;
pub mod network;
pub mod norm;
pub mod optim;
pub mod pool;
mod population;
mod sgemm;
pub mod tokens;
mod update;

pub use ensemble::ensemble_evaluation;
pub use gemm::GemmThreads;
pub use population::{evaluate_params, CpuBackend};

/// The floating-point types the CPU ops run in: f32 for training, f64 for gradient checks.
pub trait Real:
    num_traits::Float
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::MulAssign
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// `C = alpha·A·B + beta·C` with `A` `(m, k)`, `B` `(k, n)`, `C` `(m, n)`, each given by
    /// its row and column strides (so a transpose is a swap of strides, not a copy).
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: (&[Self], usize, usize),
        b: (&[Self], usize, usize),
        beta: Self,
        c: (&mut [Self], usize, usize),
    );
    fn from_f32(x: f32) -> Self;
    fn to_f64(self) -> f64;
    /// `x ← eˣ` for every element. f32 uses [`exp_f32`], which the compiler vectorises (a
    /// libm call per element cost a tenth of the tiny workload's step in the softmax); f64,
    /// the finite-difference checks' type, keeps libm's exp.
    fn exp_in_place(xs: &mut [Self]);
    /// The standard normal's cdf `Φ(x)` and pdf `φ(x)` (GELU and its derivative): f64
    /// through libm's erfc, the gradient checks' reference; f32 by [`normal_cdf_pdf_f32`],
    /// which vectorises (libm per element was a quarter of a vision transformer's step).
    fn normal_cdf_pdf(x: Self) -> (Self, Self);
}

/// `Φ(x)` and `φ(x)` in f32 without a call or a branch: Abramowitz & Stegun 7.1.26 for
/// `erf(|x|/√2)` (absolute error ≤ 1.5e-7, about f32's resolution near 1) with the
/// exponential from [`exp_f32`], mirrored for negative `x`.
#[inline(always)]
pub fn normal_cdf_pdf_f32(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let poly = ((((A[4] * t + A[3]) * t + A[2]) * t + A[1]) * t + A[0]) * t;
    let gauss = exp_f32(-z * z);
    // erf(z) = 1 − poly·e^{−z²}; Φ(±|x|) = (1 ± erf(z)) / 2.
    let tail = 0.5 * poly * gauss;
    let cdf = if x >= 0.0 { 1.0 - tail } else { tail };
    (
        cdf,
        gauss * (0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2),
    )
}

/// `eˣ` in f32 without a call or a branch, so a loop over it vectorises: `x = n·ln2 + r`
/// with `n` rounded by the 1.5·2²³ trick, `eʳ` by Cephes' `expf` polynomial on
/// `|r| ≤ ln2/2` (within 2 ulp of libm over the softmax's inputs, `x ≤ 0`), and `2ⁿ` built
/// in the exponent bits. Inputs are clamped to [−87, 88], where `eˣ` is a normal f32.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    // t's low mantissa bits hold n + 2²² (1.5·2²³ = 0x4B40_0000 as bits).
    let n_bits = t.to_bits().wrapping_sub(0x4B40_0000) as i32;
    e * f32::from_bits(((n_bits + 127) << 23) as u32)
}

/// Panics unless every index `i·rs + j·cs` with `i < rows`, `j < cols` lies inside `len`:
/// the precondition that makes the raw-pointer GEMM below memory-safe.
fn assert_covers(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) {
    if rows > 0 && cols > 0 {
        let last = (rows - 1) * rs + (cols - 1) * cs;
        assert!(
            last < len,
            "GEMM operand of {len} elements indexed at {last}"
        );
    }
}

macro_rules! impl_real {
    ($t:ty, $gemm:path, $exp:path, $normal:path) => {
        impl Real for $t {
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: (&[Self], usize, usize),
                b: (&[Self], usize, usize),
                beta: Self,
                c: (&mut [Self], usize, usize),
            ) {
                assert_covers(a.0.len(), m, k, a.1, a.2);
                assert_covers(b.0.len(), k, n, b.1, b.2);
                assert_covers(c.0.len(), m, n, c.1, c.2);
                // SAFETY: the three asserts above prove every element the kernel touches is
                // inside its slice; `c` is a unique borrow, so it aliases neither `a` nor `b`.
                unsafe {
                    gemm::gemm(
                        $gemm,
                        (m, k, n),
                        alpha,
                        (a.0.as_ptr(), a.1 as isize, a.2 as isize),
                        (b.0.as_ptr(), b.1 as isize, b.2 as isize),
                        beta,
                        (c.0.as_mut_ptr(), c.1 as isize, c.2 as isize),
                    )
                }
            }
            fn from_f32(x: f32) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp_in_place(xs: &mut [Self]) {
                for x in xs {
                    *x = $exp(*x);
                }
            }
            fn normal_cdf_pdf(x: Self) -> (Self, Self) {
                $normal(x)
            }
        }
    };
}

/// `Φ(x)` and `φ(x)` in f64 (erfc from libm keeps the tails accurate).
fn normal_cdf_pdf_f64(x: f64) -> (f64, f64) {
    let cdf = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
    (
        cdf,
        (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt(),
    )
}

impl_real!(f32, sgemm::sgemm, exp_f32, normal_cdf_pdf_f32);
impl_real!(f64, matrixmultiply::dgemm, f64::exp, normal_cdf_pdf_f64);

#[cfg(test)]
mod tests {
    use super::{exp_f32, normal_cdf_pdf_f32, normal_cdf_pdf_f64};

    #[test]
    fn the_f32_normal_cdf_and_pdf_are_within_3e_7_of_libm() {
        let mut worst = (0.0f64, 0.0f64);
        for i in 0..=200_000 {
            let x = -10.0 + 20.0 * f64::from(i) / 200_000.0;
            let (c, p) = normal_cdf_pdf_f32(x as f32);
            let (wc, wp) = normal_cdf_pdf_f64(x);
            worst.0 = worst.0.max((f64::from(c) - wc).abs());
            worst.1 = worst.1.max((f64::from(p) - wp).abs());
        }
        assert!(worst.0 < 3e-7 && worst.1 < 3e-7, "{worst:?}");
    }

    #[test]
    fn exp_f32_is_within_two_ulp_of_libm_on_the_softmax_range() {
        let mut worst = 0u32;
        for i in 0..=200_000 {
            let x = -87.0 + 87.0 * i as f32 / 200_000.0;
            let (got, want) = (exp_f32(x), x.exp());
            worst = worst.max(got.to_bits().abs_diff(want.to_bits()));
        }
        assert!(worst <= 2, "{worst} ulp");
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(-1000.0) < 1e-37);
        assert!((exp_f32(10.0) / 10f32.exp() - 1.0).abs() < 1e-6);
    }
}
