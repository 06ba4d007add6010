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
pub mod linear;
pub mod loss;
pub mod network;
pub mod norm;
pub mod optim;
pub mod pool;
mod population;
pub mod tokens;

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
    ($t:ty, $gemm:path, $exp:path) => {
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
                    $gemm(
                        m,
                        k,
                        n,
                        alpha,
                        a.0.as_ptr(),
                        a.1 as isize,
                        a.2 as isize,
                        b.0.as_ptr(),
                        b.1 as isize,
                        b.2 as isize,
                        beta,
                        c.0.as_mut_ptr(),
                        c.1 as isize,
                        c.2 as isize,
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
        }
    };
}

impl_real!(f32, matrixmultiply::sgemm, exp_f32);
impl_real!(f64, matrixmultiply::dgemm, f64::exp);

#[cfg(test)]
mod tests {
    use super::exp_f32;

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
