//! The CPU backend: always compiled, the reference for every CUDA kernel and the fallback.
//!
//! Ops are generic over [`Real`] so that the very code that trains in f32 is the code the
//! f64 finite-difference checks differentiate. Each op file pairs `*_forward` with
//! `*_backward` and keeps a plain-loop reference where the fast path is not itself a loop.

pub mod activation;
pub mod augment;
pub mod dropout;
pub mod linear;
pub mod loss;
pub mod optim;
mod population;

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
    ($t:ty, $gemm:path) => {
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
        }
    };
}

impl_real!(f32, matrixmultiply::sgemm);
impl_real!(f64, matrixmultiply::dgemm);
