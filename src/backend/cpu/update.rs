//! One member's optimizer step and gradient check, split over cores the way its weight
//! gradients were.
//!
//! Why: a lone member (a final retrain, the last member of a rung) splits its large GEMMs
//! over idle cores (`gemm.rs`), but stepping the optimizer on one core then pulled the
//! other core's half of every weight gradient across, and the next pass's split GEMMs
//! pulled the updated weights back: on this 2-core machine the split saved nothing (a
//! 3 × 256² layer stack: 553–571 µs a step whole, 577–579 µs split). Here a dense layer's
//! weights are stepped by rows, in the same blocks of rows in which its `xᵀ·dy` GEMM gave
//! them to the cores, so each core updates the rows whose gradient it wrote and whose
//! weights, momentum and `dy·Wᵀ` block it keeps: 427–435 µs a step, 1.3× faster.
//!
//! The gradient's norm and its count of non-finite elements are taken in the same pass, in
//! fixed chunks of [`CHUNK`] elements (each chunk's squares summed in f32 lanes, the
//! chunks in f64 in order), so they do not depend on how the step was split, on the
//! thread count or on the population. The optimizers work element by element, so the
//! parameters are the same bits however they are split.

use super::gemm::{split_of, Split};
use super::optim::optimizer_step;
use crate::model::hparams::OptimHparams;
use crate::model::{Arch, Layer};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// Elements per chunk of the gradient check; pieces of the step start and end on chunk
/// boundaries (or at the end of the trainable parameters).
const CHUNK: usize = 1024;

/// What one step needs besides the slices: the optimizer, the step's number (AdamW's bias
/// correction) and the schedule's factor.
#[derive(Clone, Copy)]
pub struct UpdateStep<'a> {
    pub optim: &'a OptimHparams,
    pub step: u64,
    pub lr_factor: f32,
}

/// One member's update plan for an epoch: its trainable front cut into pieces, each with
/// the job that steps it, and the per-chunk sums of the gradient check. Built once per
/// epoch, not per step: the pieces depend only on the layers, the batch size and the
/// thread count. (An epoch's shorter last batch may split its GEMMs otherwise; that moves
/// where a block runs, never a result.)
pub struct Updater {
    pieces: Vec<(Range<usize>, usize)>,
    /// Jobs the pieces name (1: the calling thread alone).
    jobs: usize,
    /// Each chunk's sum of squares as f64 bits; every step overwrites every chunk.
    chunks: Vec<AtomicU64>,
}

impl Updater {
    /// The plan for `arch`'s trainable front (`len` values) at batches of `rows`, split as
    /// this thread's [`super::GemmThreads`] splits the GEMMs.
    pub fn new(arch: &Arch, rows: usize, len: usize) -> Self {
        let pieces = pieces(arch, rows, len);
        Updater {
            jobs: pieces.iter().map(|(_, job)| job + 1).max().unwrap_or(1),
            pieces,
            chunks: (0..len.div_ceil(CHUNK))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// Steps the optimizer over the trainable front of a member's slice (`params`,
    /// `grad`, `m` and `v` all cut to it) and returns the gradient's squared norm over its
    /// finite elements and the count of the others.
    pub fn step(
        &self,
        at: UpdateStep<'_>,
        params: &mut [f32],
        grad: &[f32],
        (m, v): (&mut [f32], &mut [f32]),
    ) -> (f64, u64) {
        let nonfinite = AtomicU64::new(0);
        let slices = Slices {
            params: params.as_mut_ptr(),
            len: grad.len(),
            m: m.as_mut_ptr(),
            v: v.as_mut_ptr(),
        };
        let run = |job: usize| {
            for piece in self.pieces.iter().filter(|(_, j)| *j == job) {
                // SAFETY: the pieces are disjoint ranges inside the slices (see `pieces`),
                // and each is run by exactly one job.
                let (p, m, v) = unsafe { slices.range(piece.0.clone()) };
                let g = &grad[piece.0.clone()];
                optimizer_step(at.optim, at.step, at.lr_factor, p, g, m, v);
                check(piece.0.start, g, &self.chunks, &nonfinite);
            }
        };
        if self.jobs == 1 {
            run(0);
        } else {
            // As `gemm.rs` does: job 0 here, the others offered to idle cores.
            rayon::scope(|scope| {
                for job in 1..self.jobs {
                    let run = &run;
                    scope.spawn(move |_| run(job));
                }
                run(0);
            });
        }
        let squares = (self.chunks.iter())
            .map(|c| f64::from_bits(c.load(Ordering::Relaxed)))
            .sum();
        (squares, nonfinite.load(Ordering::Relaxed))
    }
}

/// The trainable front cut into chunk-aligned pieces, each with the core that runs it:
/// the rows of a dense layer's weights that its `xᵀ·dy` GEMM gave to core `c` go to core
/// `c` (rounded to chunks); everything else to core 0.
fn pieces(arch: &Arch, rows: usize, len: usize) -> Vec<(Range<usize>, usize)> {
    let round = |at: usize| (at.div_ceil(CHUNK) * CHUNK).min(len);
    let mut owned: Vec<(usize, usize, usize)> = Vec::new(); // (start, end, core) of blocks > 0
    let dense = arch.layers.iter().filter(|l| l.param_shape().is_some());
    for (layer, slice) in dense.zip(arch.param_slices()) {
        let Layer::Dense { inputs, outputs } = *layer else {
            continue;
        };
        let Split {
            by_rows,
            size,
            blocks,
        } = split_of(inputs, rows, outputs);
        if blocks <= 1 || !by_rows {
            continue;
        }
        for (core, first_row) in (size..inputs).step_by(size).enumerate() {
            let last_row = (first_row + size).min(inputs);
            let (start, end) = (
                round(slice.weights + first_row * outputs),
                round(slice.weights + last_row * outputs),
            );
            if start < end {
                owned.push((start, end, core + 1));
            }
        }
    }
    let mut out = Vec::with_capacity(2 * owned.len() + 1);
    let mut at = 0;
    for (start, end, core) in owned {
        if at < start {
            out.push((at..start, 0));
        }
        out.push((start..end, core));
        at = end;
    }
    if at < len {
        out.push((at..len, 0));
    }
    out
}

/// Adds the squares of `grad`'s finite elements to the chunks it covers (it starts at
/// element `start`, a chunk boundary) and counts the others.
fn check(start: usize, grad: &[f32], chunks: &[AtomicU64], nonfinite: &AtomicU64) {
    for (i, chunk) in grad.chunks(CHUNK).enumerate() {
        let (squares, bad) = squares(chunk);
        chunks[start / CHUNK + i].store(squares.to_bits(), Ordering::Relaxed);
        if bad > 0 {
            nonfinite.fetch_add(bad, Ordering::Relaxed);
        }
    }
}

/// The sum of the squares of the finite elements, and how many were not finite. On the
/// hot path of every step, so the common case is one vectorisable pass (eight f32 lanes,
/// which the compiler keeps in SIMD registers); elements are counted one by one only when
/// the sum shows something non-finite.
fn squares(grad: &[f32]) -> (f64, u64) {
    let mut lanes = [0.0f32; 8];
    let chunks = grad.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|g| g * g).sum();
    for c in chunks {
        for (acc, g) in lanes.iter_mut().zip(c) {
            *acc += g * g;
        }
    }
    let sq = f64::from(lanes.iter().sum::<f32>() + tail);
    if sq.is_finite() {
        return (sq, 0);
    }
    let (mut sq, mut bad) = (0.0f64, 0u64);
    for &g in grad {
        if g.is_finite() {
            sq += f64::from(g) * f64::from(g);
        } else {
            bad += 1;
        }
    }
    (sq, bad)
}

/// The slices the pieces cut, shared by the jobs (each takes its own disjoint ranges).
struct Slices {
    params: *mut f32,
    len: usize,
    m: *mut f32,
    v: *mut f32,
}

// SAFETY: the jobs write disjoint ranges (the pieces), and the scope joins them all before
// the borrows behind the pointers end.
unsafe impl Sync for Slices {}

impl Slices {
    /// The parameters and both moments over `range`.
    ///
    /// # Safety
    /// `range` lies inside the slices (`len` values each), and no other live reference
    /// covers it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn range(&self, range: Range<usize>) -> (&mut [f32], &mut [f32], &mut [f32]) {
        debug_assert!(range.end <= self.len);
        let len = range.len();
        (
            std::slice::from_raw_parts_mut(self.params.add(range.start), len),
            std::slice::from_raw_parts_mut(self.m.add(range.start), len),
            std::slice::from_raw_parts_mut(self.v.add(range.start), len),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::GemmThreads;
    use crate::model::hparams::{OptimHparams, OptimizerKind};

    #[test]
    fn squares_count_only_what_is_not_finite() {
        let g: Vec<f32> = (0..21).map(|i| i as f32 * 0.5).collect();
        let exact = g.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
        let (sq, bad) = squares(&g);
        assert!((sq - exact).abs() < 1e-5 * exact && bad == 0);
        let mut h = g.clone();
        h[3] = f32::NAN;
        h[20] = f32::INFINITY;
        let (sq, bad) = squares(&h);
        assert_eq!(bad, 2);
        assert!((sq - (exact - 1.5f64.powi(2) - 10.0f64.powi(2))).abs() < 1e-5 * exact);
        // Squares that overflow f32 are still counted as finite elements.
        assert_eq!(squares(&[3e20, 1.0]).1, 0);
    }

    /// Split over 1, 2 or 3 cores, a step gives the same parameters, moments, squared
    /// norm and non-finite count, bit for bit; the pieces tile the slice.
    #[test]
    fn a_split_step_is_the_whole_step() {
        let arch = Arch::mlp(64, &[256, 300, 256], 10);
        let len = arch.trainable_params();
        let filled = |salt: u32| -> Vec<f32> {
            (0..len as u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) ^ salt) as f32 / u32::MAX as f32 - 0.5)
                .collect()
        };
        let mut grad = filled(1);
        grad[1000] = f32::NAN;
        grad[len - 1] = f32::INFINITY;
        for kind in [OptimizerKind::Sgd, OptimizerKind::AdamW] {
            let optim = OptimHparams {
                kind,
                ..OptimHparams::sgd(0.05, 0.9, 1e-4)
            };
            let at = UpdateStep {
                optim: &optim,
                step: 3,
                lr_factor: 0.5,
            };
            let run = |threads: usize| {
                let _guard = GemmThreads::set(threads);
                let pieces = pieces(&arch, 32, len);
                assert_eq!(pieces.first().map(|p| p.0.start), Some(0));
                assert!(pieces.windows(2).all(|w| w[0].0.end == w[1].0.start));
                assert_eq!(pieces.last().map(|p| p.0.end), Some(len));
                let (mut p, mut m, mut v) = (filled(2), filled(3), filled(4).map_abs());
                let health = Updater::new(&arch, 32, len).step(at, &mut p, &grad, (&mut m, &mut v));
                (p, m, v, health, pieces.iter().map(|p| p.1).max())
            };
            let whole = run(1);
            assert_eq!(whole.4, Some(0), "one core runs every piece");
            assert_eq!(whole.3 .1, 2);
            for threads in [2, 3] {
                let split = run(threads);
                assert!(split.4 > Some(0), "{threads} threads share the step");
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&split.0), bits(&whole.0), "{kind:?} parameters");
                assert_eq!(bits(&split.1), bits(&whole.1), "{kind:?} first moment");
                assert_eq!(bits(&split.2), bits(&whole.2), "{kind:?} second moment");
                assert_eq!(split.3 .0.to_bits(), whole.3 .0.to_bits());
                assert_eq!(split.3 .1, whole.3 .1);
            }
        }
    }

    trait MapAbs {
        fn map_abs(self) -> Self;
    }

    impl MapAbs for Vec<f32> {
        /// AdamW's second moment is never negative.
        fn map_abs(self) -> Self {
            self.into_iter().map(f32::abs).collect()
        }
    }
}
