//! Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11, "Parallel random
//! numbers: as easy as 1, 2, 3").
//!
//! Why counter-based: a random number is a pure function of (key, counter), so a dropout
//! mask element or an initial weight depends only on *which* member, step and element it
//! is — never on how many members share the population, on thread scheduling, or on the
//! order in which work is done. That is what makes "P members together = P runs alone"
//! bit-identical, and it is what a CUDA twin can reproduce exactly.

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// What a stream of random numbers is for; part of the counter so streams never overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Stream {
    /// Initial weights of one member (counter word 1 = layer).
    Init = 1,
    /// Dropout masks (counter words 1–2 = step, word 3 high bits = layer).
    Dropout = 2,
    /// The shared minibatch order of one epoch (counter word 1 = epoch).
    Shuffle = 3,
    /// The stratified train/validation/test split.
    Split = 4,
    /// Input augmentation (counter words 1–2 = step; index walks rows, then elements).
    Augment = 5,
    /// Dropout masks on attention weights (as `Dropout`; layer = the attention's block).
    AttentionDropout = 6,
    /// Spatial dropout's per-channel masks (as `Dropout`; index = sample·channels + c).
    SpatialDropout = 7,
}

/// One Philox4x32-10 block: four independent 32-bit words for `(key, counter)`.
pub fn philox4x32(key: u64, counter: [u32; 4]) -> [u32; 4] {
    let mut k0 = key as u32;
    let mut k1 = (key >> 32) as u32;
    let mut c = counter;
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(PHILOX_W0);
            k1 = k1.wrapping_add(PHILOX_W1);
        }
        let p0 = u64::from(PHILOX_M0) * u64::from(c[0]);
        let p1 = u64::from(PHILOX_M1) * u64::from(c[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0];
    }
    c
}

/// The `index`-th 32-bit word of a stream: `(key, stream, a, b)` name the stream,
/// `index` walks it. Four consecutive indices share one Philox block.
pub fn stream_word(key: u64, stream: Stream, a: u32, b: u32, index: u64) -> u32 {
    stream_block(key, stream, a, b, index >> 2)[(index & 3) as usize]
}

/// Words `4·block … 4·block + 3` of a stream at once: one Philox evaluation, where four
/// calls of [`stream_word`] would make four.
pub fn stream_block(key: u64, stream: Stream, a: u32, b: u32, block: u64) -> [u32; 4] {
    let counter = [
        block as u32,
        a,
        b ^ ((block >> 32) as u32).rotate_left(16),
        stream as u32,
    ];
    philox4x32(key, counter)
}

/// Blocks evaluated side by side by [`stream_blocks`]: sixteen 32-bit lanes fill one
/// AVX-512 register (two AVX2 ones).
pub const BLOCK_LANES: usize = 16;

/// Words `4·first … 4·(first + BLOCK_LANES) − 1` of a stream, in order: the blocks
/// `first …` of [`stream_block`] side by side, one lane each, so the rounds run as vector
/// instructions where the caller is compiled for them (Philox's 32×32→64-bit products are
/// one `vpmuludq` per two lanes). Dropout masks draw most of their words here; one block at
/// a time was a fifth of a small MLP's training step.
#[inline(always)]
pub fn stream_blocks(
    key: u64,
    stream: Stream,
    a: u32,
    b: u32,
    first: u64,
) -> [u32; 4 * BLOCK_LANES] {
    let mut c = [[0u32; BLOCK_LANES]; 4];
    for (l, block) in (first..first + BLOCK_LANES as u64).enumerate() {
        c[0][l] = block as u32;
        c[1][l] = a;
        c[2][l] = b ^ ((block >> 32) as u32).rotate_left(16);
        c[3][l] = stream as u32;
    }
    let (mut k0, mut k1) = (key as u32, (key >> 32) as u32);
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(PHILOX_W0);
            k1 = k1.wrapping_add(PHILOX_W1);
        }
        let mut next = [[0u32; BLOCK_LANES]; 4];
        for l in 0..BLOCK_LANES {
            let p0 = u64::from(PHILOX_M0) * u64::from(c[0][l]);
            let p1 = u64::from(PHILOX_M1) * u64::from(c[2][l]);
            next[0][l] = (p1 >> 32) as u32 ^ c[1][l] ^ k0;
            next[1][l] = p1 as u32;
            next[2][l] = (p0 >> 32) as u32 ^ c[3][l] ^ k1;
            next[3][l] = p0 as u32;
        }
        c = next;
    }
    let mut words = [0u32; 4 * BLOCK_LANES];
    for l in 0..BLOCK_LANES {
        for (j, lane) in c.iter().enumerate() {
            words[4 * l + j] = lane[l];
        }
    }
    words
}

/// Words `0 … out.len() − 1` of a stream into `out`, sixteen blocks at a time (by hand with
/// AVX-512 where the CPU has it): [`stream_word`]'s values without a Philox evaluation per
/// word. Initial weights draw here; one block per weight (three words of four unused) was
/// a few percent of a default digits sweep, on the main thread before the first epoch.
pub fn stream_words(key: u64, stream: Stream, a: u32, b: u32, out: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    let fast = std::arch::is_x86_feature_detected!("avx512f");
    for (group, words) in out.chunks_mut(4 * BLOCK_LANES).enumerate() {
        let first = (group * BLOCK_LANES) as u64;
        #[cfg(target_arch = "x86_64")]
        if fast {
            // SAFETY: the CPU has AVX-512F (checked above).
            let blocks = unsafe { avx512::stream_blocks(key, stream, a, b, first) };
            words.copy_from_slice(&blocks[..words.len()]);
            continue;
        }
        words.copy_from_slice(&stream_blocks(key, stream, a, b, first)[..words.len()]);
    }
}

/// [`stream_blocks`] written with AVX-512 intrinsics, the same words in the same order.
///
/// Why by hand: compiled for AVX-512, the portable version kept its products in vector
/// registers but moved the words into their interleaved order one by one (some 60 scalar
/// inserts and extracts per call), and drew a dropout mask at 1.8 ns per element, a tenth
/// of a small MLP's step. Here the 16 blocks' counters sit in four registers, a round is
/// eight `vpmuludq` and blends, and a 4 × 16 transpose of twelve shuffles puts the words in
/// order.
#[cfg(target_arch = "x86_64")]
pub mod avx512 {
    use super::{Stream, BLOCK_LANES, PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1};
    use std::arch::x86_64::*;

    /// The high and low 32 bits of `m · x` in every lane.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mul_hi_lo(m: u32, x: __m512i) -> (__m512i, __m512i) {
        let m = _mm512_set1_epi64(i64::from(m));
        // Even lanes' products, then odd lanes' (moved down into the even positions).
        let even = _mm512_mul_epu32(x, m);
        let odd = _mm512_mul_epu32(_mm512_srli_epi64::<32>(x), m);
        const ODD: __mmask16 = 0xAAAA;
        let hi = _mm512_mask_blend_epi32(ODD, _mm512_srli_epi64::<32>(even), odd);
        let lo = _mm512_mask_blend_epi32(ODD, even, _mm512_slli_epi64::<32>(odd));
        (hi, lo)
    }

    /// Words `4·first … 4·(first + 16) − 1` of a stream, in order, as [`super::stream_blocks`].
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn stream_blocks(
        key: u64,
        stream: Stream,
        a: u32,
        b: u32,
        first: u64,
    ) -> [u32; 4 * BLOCK_LANES] {
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let mut c0 = _mm512_add_epi32(_mm512_set1_epi32(first as u32 as i32), lanes);
        let mut c1 = _mm512_set1_epi32(a as i32);
        // The block index's high word, per lane: it steps where the low word wraps.
        let wrapped = _mm512_cmplt_epu32_mask(c0, _mm512_set1_epi32(first as u32 as i32));
        let high = |block: u64| (b ^ ((block >> 32) as u32).rotate_left(16)) as i32;
        let mut c2 = _mm512_mask_blend_epi32(
            wrapped,
            _mm512_set1_epi32(high(first)),
            _mm512_set1_epi32(high(first.wrapping_add(1 << 32))),
        );
        let mut c3 = _mm512_set1_epi32(stream as u32 as i32);
        let (mut k0, mut k1) = (key as u32, (key >> 32) as u32);
        for round in 0..10 {
            if round > 0 {
                k0 = k0.wrapping_add(PHILOX_W0);
                k1 = k1.wrapping_add(PHILOX_W1);
            }
            let (hi0, lo0) = mul_hi_lo(PHILOX_M0, c0);
            let (hi1, lo1) = mul_hi_lo(PHILOX_M1, c2);
            // 0x96: the three-way exclusive or.
            c0 = _mm512_ternarylogic_epi32::<0x96>(hi1, c1, _mm512_set1_epi32(k0 as i32));
            c1 = lo1;
            c2 = _mm512_ternarylogic_epi32::<0x96>(hi0, c3, _mm512_set1_epi32(k1 as i32));
            c3 = lo0;
        }
        // Lane l of c_j is word 4·l + j: transpose the 4 × 16 words, first within each
        // 128-bit quarter (blocks 4q … 4q + 3 of the four registers), then the quarters.
        let (x01, y01) = (_mm512_unpacklo_epi32(c0, c1), _mm512_unpackhi_epi32(c0, c1));
        let (x23, y23) = (_mm512_unpacklo_epi32(c2, c3), _mm512_unpackhi_epi32(c2, c3));
        let r0 = _mm512_unpacklo_epi64(x01, x23);
        let r1 = _mm512_unpackhi_epi64(x01, x23);
        let r2 = _mm512_unpacklo_epi64(y01, y23);
        let r3 = _mm512_unpackhi_epi64(y01, y23);
        // r_i holds block 4q + i in quarter q; gather quarter q of r0 … r3 into output q.
        let s0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(r0, r1);
        let s1 = _mm512_shuffle_i32x4::<0b01_00_01_00>(r2, r3);
        let s2 = _mm512_shuffle_i32x4::<0b11_10_11_10>(r0, r1);
        let s3 = _mm512_shuffle_i32x4::<0b11_10_11_10>(r2, r3);
        let out = [
            _mm512_shuffle_i32x4::<0b10_00_10_00>(s0, s1),
            _mm512_shuffle_i32x4::<0b11_01_11_01>(s0, s1),
            _mm512_shuffle_i32x4::<0b10_00_10_00>(s2, s3),
            _mm512_shuffle_i32x4::<0b11_01_11_01>(s2, s3),
        ];
        let mut words = [0u32; 4 * BLOCK_LANES];
        for (q, v) in out.into_iter().enumerate() {
            _mm512_storeu_si512(words.as_mut_ptr().add(16 * q).cast(), v);
        }
        words
    }
}

/// A uniform number in [0, 1) with 24 random bits (exactly representable in f32).
pub fn unit_f32(word: u32) -> f32 {
    (word >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

/// A uniform number in [0, 1) as f64 (24 random bits, same value as [`unit_f32`]).
pub fn unit_f64(word: u32) -> f64 {
    f64::from(unit_f32(word))
}

/// Mixes a parent seed and a child index into an independent child seed (splitmix64),
/// e.g. the seed of trial `n` from the sweep seed.
pub fn derive_seed(parent: u64, child: u64) -> u64 {
    let mut z = parent ^ child.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A permutation of `0..n` drawn from `(key, stream, a)` by Fisher–Yates.
pub fn permutation(n: usize, key: u64, stream: Stream, a: u32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let word = stream_word(key, stream, a, 0, i as u64);
        // Lemire's multiply-shift: the bias for n < 2^16 is below 2^-16, irrelevant here.
        let j = ((u64::from(word) * (i as u64 + 1)) >> 32) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Side by side, the blocks are [`stream_block`]'s, in order, also across the 2³²
    /// boundary of the block index (where the counter's third word changes).
    #[test]
    fn stream_blocks_are_the_blocks_in_order() {
        for first in [0u64, 5, (1 << 32) - 7, 3 << 40] {
            let words = stream_blocks(0xfeed, Stream::Dropout, 11, 1 << 24, first);
            for l in 0..BLOCK_LANES {
                let block = stream_block(0xfeed, Stream::Dropout, 11, 1 << 24, first + l as u64);
                assert_eq!(words[4 * l..4 * l + 4], block, "first {first} lane {l}");
            }
        }
    }

    /// The AVX-512 version gives the portable one's words, also where the block index's
    /// low word wraps inside the sixteen blocks.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_stream_blocks_are_the_portable_ones() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            println!("SKIP: no AVX-512F on this CPU");
            return;
        }
        for first in [
            0u64,
            5,
            (1 << 32) - 7,
            (1 << 32) - 1,
            3 << 40,
            u64::MAX - 20,
        ] {
            for (key, a, b) in [(0xfeed, 11, 1 << 24), (u64::MAX, u32::MAX, 7)] {
                // SAFETY: the CPU has AVX-512F (checked above).
                let fast = unsafe { avx512::stream_blocks(key, Stream::Dropout, a, b, first) };
                assert_eq!(
                    fast,
                    stream_blocks(key, Stream::Dropout, a, b, first),
                    "first {first}"
                );
            }
        }
    }

    #[test]
    fn stream_words_are_the_words_one_by_one() {
        for len in [0usize, 1, 5, 64, 65, 200] {
            let mut out = vec![0u32; len];
            stream_words(42, Stream::Init, 3, 0, &mut out);
            for (i, &w) in out.iter().enumerate() {
                assert_eq!(
                    w,
                    stream_word(42, Stream::Init, 3, 0, i as u64),
                    "len {len} word {i}"
                );
            }
        }
    }

    /// Known-answer vectors from Random123's `kat_vectors` for philox4x32_10.
    #[test]
    fn philox_matches_random123_known_answers() {
        assert_eq!(
            philox4x32(0, [0, 0, 0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32(u64::MAX, [u32::MAX; 4]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32(
                0x299f_31d0_a409_3822,
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn unit_f32_stays_in_half_open_interval() {
        assert_eq!(unit_f32(0), 0.0);
        assert!(unit_f32(u32::MAX) < 1.0);
    }

    #[test]
    fn permutation_is_a_permutation_and_depends_on_key() {
        let p = permutation(1000, 7, Stream::Shuffle, 0);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(p, permutation(1000, 8, Stream::Shuffle, 0));
        assert_ne!(p, permutation(1000, 7, Stream::Shuffle, 1));
    }

    #[test]
    fn streams_do_not_overlap() {
        let a = stream_word(1, Stream::Init, 0, 0, 5);
        let b = stream_word(1, Stream::Dropout, 0, 0, 5);
        assert_ne!(a, b);
    }
}
