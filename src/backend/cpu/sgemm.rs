//! The f32 GEMM: an unpacked AVX-512 kernel where it beats matrixmultiply, whose results it
//! reproduces bit for bit; matrixmultiply everywhere else.
//!
//! Why: a small model's step is GEMMs of a 32-row minibatch against a weight matrix, and
//! matrixmultiply copies ("packs") both operands into panels on every call. For
//! `x·W` with `x` 32×256 and `W` 256×256 that is 72 K floats copied for 2 M multiply-adds:
//! packing was 20% of the default digits sweep's profile, as much as half its GEMM kernel.
//! Here the kernel reads `B`'s rows where they lie (contiguous along `n`), broadcasts `A`'s
//! elements from wherever their strides put them, and keeps a 12 × 32 tile of `C` in 24
//! AVX-512 registers. Measured against matrixmultiply on this CPU (GFLOP/s, same bits):
//! `x·W` 32×256×256 1.15×, 32×64×256 1.10×, the 256→10 classifier 1.36×, 64×784×128 1.21×;
//! `dy·Wᵀ` 32×256×256 (through a copy of `dyᵀ`, 8 K floats) 1.43×. matrixmultiply stays
//! where it was as fast or faster: `xᵀ·dy` (0.97–1.02×), short `k` behind a copy (0.44× at
//! `k` = 10), many rows or a large `B` ([`unpacked_pays`]), `alpha` ≠ 1, `beta` other than
//! 0 or 1, and CPUs without AVX-512F.
//!
//! Why the bits are matrixmultiply's, so nothing trained before changes: for `k` ≤ its `kc`
//! (256), matrixmultiply computes each element of `A·B` as one chain of fused multiply-adds
//! over `k` in order, from zero, and then writes `alpha·ab + beta·c` with one more fused
//! multiply-add (`ab` when `beta` is 0, `ab + c` when `alpha` = `beta` = 1); a longer `k`
//! runs in blocks of 256, each added to `C` that way. This kernel does the same operations
//! in the same order for each element, wherever the element lies in its tile, so it also
//! keeps [`super::gemm`]'s split GEMMs bit-identical. The unit test checks every path
//! against matrixmultiply over random shapes, strides and both `beta`s.

/// matrixmultiply's blocking of `k`: the sums restart at these boundaries (see above).
#[cfg(target_arch = "x86_64")]
const KC: usize = 256;

/// Rows of `C` per tile.
#[cfg(target_arch = "x86_64")]
const MR: usize = 12;

/// 16-lane vectors of `C` per tile row: 12 × 2 accumulators, 2 rows of `B` and a broadcast
/// fill 27 of the 32 registers. (6 × 4 and 8 × 3 tiles were slower on the `dy·Wᵀ` shapes.)
#[cfg(target_arch = "x86_64")]
const NV: usize = 2;

/// Below this `k`, copying `A` costs more than matrixmultiply's packing saves.
#[cfg(target_arch = "x86_64")]
const MIN_K_TO_COPY: usize = 64;

/// Below this `n`, the copy of `A` is too large a share of the work: a convolution's
/// weight gradient `dy·colᵀ` with 9 columns (a 3×3 kernel over one channel) spent more in
/// the copy (32 × 784 floats) than in its 226 K multiply-adds.
#[cfg(target_arch = "x86_64")]
const MIN_N_TO_COPY: usize = 64;

/// Above this many rows of `A` to copy, matrixmultiply was as fast (`dy·Wᵀ` 128×512×784:
/// 0.99×; 32 rows: 1.43×).
#[cfg(target_arch = "x86_64")]
const MAX_ROWS_TO_COPY: usize = 64;

/// Whether the unpacked kernel beats matrixmultiply on an `m × k × n` GEMM with `B`'s
/// rows contiguous: up to 128 rows of `A` (64×784×128 1.21×, 128×784×512 1.08×; 256 and
/// 512 rows 0.98×) and a `B` of at most 1 M floats (128×2048×2048: 0.84×, 2048³: 0.69×,
/// where matrixmultiply's cache blocking pays for its packing).
#[cfg(target_arch = "x86_64")]
fn unpacked_pays(m: usize, k: usize, n: usize) -> bool {
    m <= 128 && k.saturating_mul(n) <= 1 << 20
}

/// `C = alpha·A·B + beta·C`: matrixmultiply's `sgemm`, same signature and same results.
///
/// # Safety
/// As for `matrixmultiply::sgemm`: every element the shapes and strides index lies inside
/// its operand, and `c` aliases neither `a` nor `b`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    #[cfg(target_arch = "x86_64")]
    if alpha == 1.0
        && (beta == 0.0 || beta == 1.0)
        && m > 0
        && k > 0
        && n > 0
        && std::arch::is_x86_feature_detected!("avx512f")
    {
        let add = beta == 1.0;
        let a = Strided {
            ptr: a,
            rs: rsa,
            cs: csa,
        };
        let c = StridedMut {
            ptr: c,
            rs: rsc,
            cs: csc,
        };
        if csb == 1 && rsa != 1 && unpacked_pays(m, k, n) {
            // `x·W`: B's rows are contiguous.
            return avx512::gemm(m, k, n, a, (b, rsb), add, c);
        }
        if csb != 1 && rsa == 1 && unpacked_pays(n, k, m) {
            // Cᵀ = Bᵀ·Aᵀ, whose right operand Aᵀ has contiguous rows.
            let bt = Strided {
                ptr: b,
                rs: csb,
                cs: rsb,
            };
            return avx512::gemm(n, k, m, bt, (a.ptr, csa), add, c.transposed());
        }
        if csb != 1 && csa == 1 && m <= MAX_ROWS_TO_COPY && k >= MIN_K_TO_COPY && n >= MIN_N_TO_COPY
        {
            // `dy·Wᵀ`: both operands run along `k`. Copy A transposed (k × m, row-major),
            // then Cᵀ = Bᵀ·Aᵀ as above.
            return COPY.with(|copy| {
                let mut copy = copy.borrow_mut();
                copy.clear();
                copy.reserve(m * k);
                for l in 0..k as isize {
                    copy.extend((0..m as isize).map(|i| *a.ptr.offset(i * rsa + l)));
                }
                let bt = Strided {
                    ptr: b,
                    rs: csb,
                    cs: rsb,
                };
                avx512::gemm(
                    n,
                    k,
                    m,
                    bt,
                    (copy.as_ptr(), m as isize),
                    add,
                    c.transposed(),
                );
            });
        }
    }
    matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// The transposed copy of `A` (`dy·Wᵀ`), kept per thread between calls.
    static COPY: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A read-only matrix: pointer, row stride, column stride.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Strided {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

/// The output matrix: pointer, row stride, column stride.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct StridedMut {
    ptr: *mut f32,
    rs: isize,
    cs: isize,
}

#[cfg(target_arch = "x86_64")]
impl StridedMut {
    fn transposed(self) -> Self {
        StridedMut {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Strided, StridedMut, KC, MR, NV};
    use std::arch::x86_64::*;

    /// Lanes of a vector covering `cols` columns from its first.
    fn lanes(cols: usize) -> __mmask16 {
        if cols >= 16 {
            0xffff
        } else {
            ((1u32 << cols) - 1) as __mmask16
        }
    }

    /// `C = A·B` (`add`: `C += A·B`) with `B` given by its pointer and row stride, its
    /// columns contiguous. Tiles of `MR` rows by `16·NV` columns, `k` in blocks of `KC`.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the operands cover their shapes; `c` aliases neither.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: Strided,
        (b, rsb): (*const f32, isize),
        add: bool,
        c: StridedMut,
    ) {
        for j0 in (0..n).step_by(16 * NV) {
            let mut masks = [0; NV];
            for (v, mask) in masks.iter_mut().enumerate() {
                *mask = lanes((n - j0).saturating_sub(16 * v));
            }
            for k0 in (0..k).step_by(KC) {
                let kc = (k - k0).min(KC);
                // The first block writes `C` (or adds to it when asked), later ones add:
                // matrixmultiply's `beta` for its first `kc` block, then 1.
                let add = add || k0 > 0;
                for i0 in (0..m).step_by(MR) {
                    let a = Strided {
                        ptr: a.ptr.offset(i0 as isize * a.rs + k0 as isize * a.cs),
                        ..a
                    };
                    let b = b.offset(k0 as isize * rsb + j0 as isize);
                    let c = StridedMut {
                        ptr: c.ptr.offset(i0 as isize * c.rs + j0 as isize * c.cs),
                        ..c
                    };
                    let tile = Tile {
                        k: kc,
                        a,
                        b: (b, rsb),
                        masks,
                        add,
                        c,
                    };
                    // The tile's row count is a constant of its code, so its accumulators
                    // stay in registers.
                    macro_rules! rows {
                        ($($r:literal)*) => {
                            match (m - i0).min(MR) {
                                $($r => tile.run::<$r>(),)*
                                _ => unreachable!("a tile has 1 to MR rows"),
                            }
                        };
                    }
                    rows!(1 2 3 4 5 6 7 8 9 10 11 12);
                }
            }
        }
    }

    /// One tile of `C`: up to `MR` rows by the columns its masks cover.
    struct Tile {
        k: usize,
        a: Strided,
        b: (*const f32, isize),
        masks: [__mmask16; NV],
        add: bool,
        c: StridedMut,
    }

    impl Tile {
        /// # Safety
        /// As for [`gemm`]; `R` is this tile's row count.
        #[target_feature(enable = "avx512f")]
        unsafe fn run<const R: usize>(&self) {
            let Tile { k, a, b, masks, .. } = *self;
            // Index loops over constant bounds, which the compiler unrolls into register
            // code; the same loops written with iterators kept the accumulators in memory
            // and ran at half the speed.
            let mut acc = [[_mm512_setzero_ps(); NV]; R];
            let (mut ap, mut bp) = (a.ptr, b.0);
            for _ in 0..k {
                let mut row = [_mm512_setzero_ps(); NV];
                #[allow(clippy::needless_range_loop)]
                for v in 0..NV {
                    row[v] = _mm512_maskz_loadu_ps(masks[v], bp.add(16 * v));
                }
                #[allow(clippy::needless_range_loop)]
                for i in 0..R {
                    let ai = _mm512_set1_ps(*ap.offset(i as isize * a.rs));
                    for v in 0..NV {
                        acc[i][v] = _mm512_fmadd_ps(ai, row[v], acc[i][v]);
                    }
                }
                ap = ap.offset(a.cs);
                bp = bp.offset(b.1);
            }
            self.store(&acc);
        }

        /// Writes (or adds) the accumulators to `C`: `ab` or `ab + c`, rounded once, as
        /// matrixmultiply's epilogue does for `alpha` 1 and `beta` 0 or 1.
        #[target_feature(enable = "avx512f")]
        unsafe fn store<const R: usize>(&self, acc: &[[__m512; NV]; R]) {
            let c = self.c;
            for (i, acc) in acc.iter().enumerate() {
                for (v, (&ab, &mask)) in acc.iter().zip(&self.masks).enumerate() {
                    let first = i as isize * c.rs + (16 * v) as isize * c.cs;
                    if c.cs == 1 {
                        let p = c.ptr.offset(first);
                        let out = if self.add {
                            _mm512_add_ps(ab, _mm512_maskz_loadu_ps(mask, p))
                        } else {
                            ab
                        };
                        _mm512_mask_storeu_ps(p, mask, out);
                    } else {
                        let mut lanes = [0.0f32; 16];
                        _mm512_storeu_ps(lanes.as_mut_ptr(), ab);
                        for (j, &x) in lanes.iter().enumerate().filter(|(j, _)| mask >> j & 1 == 1)
                        {
                            let p = c.ptr.offset(first + j as isize * c.cs);
                            *p = if self.add { *p + x } else { x };
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gemm::RawGemm;
    use super::sgemm;

    /// Every path (row-major `A·B`, the transposed problem, the copy of `A`, and the
    /// fallbacks) gives matrixmultiply's bits: random shapes up to 70 × 600 × 100 (so `k`
    /// crosses the 256 and 512 block boundaries), each operand in either layout, `C` in
    /// either layout, `beta` 0 or 1 (and 0.5, the fallback).
    #[test]
    fn every_path_gives_matrixmultiplys_bits() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut below = |r: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % r as u64) as usize
        };
        let filled = |len: usize, salt: usize| -> Vec<f32> {
            (0..len)
                .map(|i| (((i * 2_654_435_761) ^ salt) % 1000) as f32 / 500.0 - 1.0)
                .collect()
        };
        for case in 0..1500 {
            let (m, k, n) = (1 + below(70), 1 + below(600), 1 + below(100));
            let layout = |transposed: bool, rows: usize, cols: usize| {
                if transposed {
                    (1, rows as isize)
                } else {
                    (cols as isize, 1)
                }
            };
            let (sa, sb, sc) = (
                layout(below(2) == 1, m, k),
                layout(below(2) == 1, k, n),
                layout(below(3) == 0, m, n),
            );
            let beta = [0.0, 1.0, 0.5][below(3)];
            let (a, b, c0) = (
                filled(m * k, case),
                filled(k * n, case + 1),
                filled(m * n, 7),
            );
            let run = |f: RawGemm<f32>| {
                let mut c = c0.clone();
                // SAFETY: the operands have exactly m·k, k·n and m·n elements, laid out by
                // the strides given.
                unsafe {
                    f(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        sa.0,
                        sa.1,
                        b.as_ptr(),
                        sb.0,
                        sb.1,
                        beta,
                        c.as_mut_ptr(),
                        sc.0,
                        sc.1,
                    )
                };
                c
            };
            let (ours, theirs) = (run(sgemm), run(matrixmultiply::sgemm));
            assert!(
                ours.iter()
                    .zip(&theirs)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{m}×{k}×{n}, strides {sa:?} {sb:?} {sc:?}, beta {beta}"
            );
        }
    }
}
