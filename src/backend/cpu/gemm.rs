//! One member's GEMM split over the cores its population leaves idle.
//!
//! The population trainer gives each core a whole member ([`super::CpuBackend`]), so a
//! population smaller than the core count — the last rung of a bracket, a final retrain, a
//! lone trial — left cores idle, and so did every epoch's tail, where the cores that had
//! finished their members waited for the slowest. The trainer now runs its members in one
//! rayon pool and says how many cores a member's GEMMs may use ([`GemmThreads`]); a large
//! GEMM splits its output into that many blocks of rows (or columns), each a rayon job.
//! A job nobody takes runs on its own thread right after the first block, so a busy
//! population pays a few µs per GEMM; an idle core takes it. Measured on the MNIST race
//! (docs/race.md), with the vectorised AdamW step of `optim.rs`: the same sweep to the
//! same bits in 78–80 s instead of 90–96 s.
//! (Scoped threads spawned per GEMM gained nothing: a thread's start and its first touch
//! of a fresh stack and packing buffer cost as much as the half GEMM it saved.)
//!
//! Why the result is bit-identical to the unsplit GEMM: matrixmultiply computes every
//! output element as the same sequence of fused multiply-adds over `k`, in the same `kc`
//! blocks, whatever the element's position or the size of `m` and `n` (its kernel is
//! chosen from the CPU's features alone). A block of rows of `C` is exactly the GEMM of
//! the same rows of `A`; a block of columns the GEMM of the same columns of `B`. So a
//! member trains to the same bits alone as in a population (tests/population.rs checks it
//! end to end; the unit test below GEMM by GEMM).

use std::cell::Cell;

thread_local! {
    static THREADS: Cell<usize> = const { Cell::new(1) };
}

/// Smallest GEMM, in multiply-adds, worth splitting: handing a block to a rayon thread
/// costs a few µs (more when it has gone to sleep), and a GEMM of 1 M multiply-adds takes
/// about 25 µs on one core here, so smaller ones run whole (an MLP's classifier layer,
/// digits-sized models).
const MIN_SPLIT_MACS: usize = 1 << 20;

/// Rows or columns per block are a multiple of this: the widest kernel's tile side, so no
/// block adds a partial tile the whole GEMM would not have had.
const BLOCK_ALIGN: usize = 16;

/// How many threads this thread's GEMMs may use until the guard drops.
pub struct GemmThreads {
    previous: usize,
}

impl GemmThreads {
    pub fn set(threads: usize) -> GemmThreads {
        GemmThreads {
            previous: THREADS.with(|t| t.replace(threads.max(1))),
        }
    }
}

impl Drop for GemmThreads {
    fn drop(&mut self) {
        THREADS.with(|t| t.set(self.previous));
    }
}

/// matrixmultiply's `sgemm` / `dgemm` signature.
pub(super) type RawGemm<T> = unsafe fn(
    usize,
    usize,
    usize,
    T,
    *const T,
    isize,
    isize,
    *const T,
    isize,
    isize,
    T,
    *mut T,
    isize,
    isize,
);

/// A matrix operand: pointer, row stride, column stride.
pub(super) type Operand<P> = (P, isize, isize);

/// The three operands, sendable to the block threads.
#[derive(Clone, Copy)]
struct Operands<T> {
    a: Operand<*const T>,
    b: Operand<*const T>,
    c: Operand<*mut T>,
}

// SAFETY: the blocks write disjoint parts of `c` and only read `a` and `b`, and the rayon
// scope joins every block before the borrows behind the pointers end.
unsafe impl<T> Send for Operands<T> {}
unsafe impl<T> Sync for Operands<T> {}

impl<T> Operands<T> {
    /// The operands of the rows `from..` of `C` (and `A`), or of its columns (and `B`'s).
    ///
    /// # Safety
    /// `from` lies inside the split dimension of the operands given to [`gemm`].
    unsafe fn block(self, by_rows: bool, from: usize) -> Self {
        let from = from as isize;
        let (mut a, mut b, mut c) = (self.a, self.b, self.c);
        if by_rows {
            a.0 = a.0.offset(from * a.1);
            c.0 = c.0.offset(from * c.1);
        } else {
            b.0 = b.0.offset(from * b.2);
            c.0 = c.0.offset(from * c.2);
        }
        Operands { a, b, c }
    }
}

/// How [`gemm`] splits an `m × k × n` GEMM over this thread's [`GemmThreads`]: into
/// blocks of `size` rows of `C` (`by_rows`) or of `size` columns; the first block runs on
/// the calling thread, block `j` is the `j`-th job offered to idle cores. `blocks` ≤ 1:
/// whole. (The optimizer step follows the same blocks, `update.rs`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Split {
    pub by_rows: bool,
    pub size: usize,
    pub blocks: usize,
}

pub(super) fn split_of(m: usize, k: usize, n: usize) -> Split {
    let long = m.max(n);
    let threads = THREADS.with(Cell::get);
    let blocks = if m.saturating_mul(k).saturating_mul(n) >= MIN_SPLIT_MACS {
        threads.min(long / BLOCK_ALIGN)
    } else {
        1
    };
    Split {
        by_rows: m >= n,
        size: long.div_ceil(blocks.max(1)).next_multiple_of(BLOCK_ALIGN),
        blocks,
    }
}

/// `C = alpha·A·B + beta·C`, split over this thread's [`GemmThreads`] when large.
///
/// # Safety
/// As for `raw`: every element indexed by the shapes and strides lies inside its operand,
/// and `c` aliases neither `a` nor `b`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm<T: Copy + Send + Sync>(
    raw: RawGemm<T>,
    (m, k, n): (usize, usize, usize),
    alpha: T,
    a: Operand<*const T>,
    b: Operand<*const T>,
    beta: T,
    c: Operand<*mut T>,
) {
    let ops = Operands { a, b, c };
    let Split {
        by_rows,
        size,
        blocks,
    } = split_of(m, k, n);
    let long = m.max(n);
    let run = |ops: Operands<T>, (rows, cols): (usize, usize)| {
        let Operands { a, b, c } = ops;
        raw(
            rows, k, cols, alpha, a.0, a.1, a.2, b.0, b.1, b.2, beta, c.0, c.1, c.2,
        )
    };
    if blocks <= 1 {
        return run(ops, (m, n));
    }
    let shape = |len: usize| if by_rows { (len, n) } else { (m, len) };
    rayon::scope(|scope| {
        let mut from = size;
        while from < long {
            let len = size.min(long - from);
            let block = ops.block(by_rows, from);
            // Safe as this function's call is: the block's rows or columns lie inside.
            scope.spawn(move |_| run(block, shape(len)));
            from += size;
        }
        run(ops, shape(size.min(long)));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(len: usize, salt: u32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ salt) as f32 / u32::MAX as f32 - 0.5)
            .collect()
    }

    /// The split GEMM equals the whole one bit for bit, by rows, by columns, transposed
    /// operands and `beta` 0 or 1, for block counts that do and do not divide the shape.
    #[test]
    fn a_split_gemm_is_bit_identical_to_the_whole() {
        for &(m, k, n) in &[
            (128, 784, 512),
            (784, 128, 512),
            (100, 300, 1000),
            (37, 2000, 77),
        ] {
            let a = filled(m * k, 1);
            let b = filled(k * n, 2);
            let c0 = filled(m * n, 3);
            for (transposed, beta) in [(false, 0.0f32), (true, 1.0)] {
                // A as given, or read through its transpose's strides.
                let (rsa, csa) = if transposed {
                    (1, m as isize)
                } else {
                    (k as isize, 1)
                };
                let result = |threads: usize| {
                    let _guard = GemmThreads::set(threads);
                    let mut c = c0.clone();
                    // SAFETY: the operands have exactly m·k, k·n and m·n elements.
                    unsafe {
                        gemm(
                            matrixmultiply::sgemm,
                            (m, k, n),
                            1.0,
                            (a.as_ptr(), rsa, csa),
                            (b.as_ptr(), n as isize, 1),
                            beta,
                            (c.as_mut_ptr(), n as isize, 1),
                        )
                    };
                    c
                };
                let whole = result(1);
                for threads in [2, 3, 5] {
                    let split = result(threads);
                    assert!(
                        whole
                            .iter()
                            .zip(&split)
                            .all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{m}×{k}×{n}, transposed {transposed}, {threads} threads"
                    );
                }
            }
        }
        assert_eq!(
            THREADS.with(Cell::get),
            1,
            "the guard restores the thread's count"
        );
    }
}
