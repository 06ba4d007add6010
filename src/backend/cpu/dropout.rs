//! Inverted dropout with masks from the counter-based RNG. CUDA twin: `kernels/dropout.cu`.
//!
//! Element `e` of layer `layer` at optimizer step `step` of the member with seed `seed` is
//! kept iff `unit_f32(philox(seed; e, step, layer)) ≥ rate`; kept values are scaled by
//! `1 / (1 − rate)` so the expected activation is unchanged and evaluation needs no rescale.
//! The mask depends on nothing else, so it is the same alone, in any population, on any device.

use super::Real;
use crate::rng::{stream_blocks, unit_f32, Stream, BLOCK_LANES};

/// Names one dropout mask.
#[derive(Clone, Copy, Debug)]
pub struct DropoutKey {
    pub seed: u64,
    pub step: u64,
    pub layer: u32,
}

/// Applies the mask to `y` in place and stores the per-element scale (0 or `1/(1−rate)`)
/// in `mask` for the backward pass.
pub fn dropout_forward<T: Real>(y: &mut [T], mask: &mut [T], rate: f32, key: DropoutKey) {
    let mask = &mut mask[..y.len()];
    dropout_mask(mask, rate, key, Stream::Dropout);
    for (v, &m) in y.iter_mut().zip(mask.iter()) {
        *v *= m;
    }
}

/// The per-element scales alone (0 or `1/(1−rate)`), from `stream`: activations' masks
/// (`Stream::Dropout`) or attention weights' (`Stream::AttentionDropout`). A fifth of a
/// small MLP's step drew masks one Philox block at a time; sixteen blocks now run side by
/// side in vector registers, by hand with AVX-512 ([`crate::rng::avx512`]) and as the
/// compiler vectorises [`stream_blocks`] elsewhere: the same mask in every version.
pub fn dropout_mask<T: Real>(mask: &mut [T], rate: f32, key: DropoutKey, stream: Stream) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked on the line above).
            return unsafe { dropout_mask_avx512(mask, rate, key, stream) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked on the line above).
            return unsafe { dropout_mask_avx2(mask, rate, key, stream) };
        }
    }
    fill_mask(mask, rate, key, stream, stream_blocks)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn dropout_mask_avx512<T: Real>(mask: &mut [T], rate: f32, key: DropoutKey, stream: Stream) {
    fill_mask(mask, rate, key, stream, |key, stream, a, b, first| {
        // SAFETY: this function runs only where the CPU has AVX-512F.
        unsafe { crate::rng::avx512::stream_blocks(key, stream, a, b, first) }
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dropout_mask_avx2<T: Real>(mask: &mut [T], rate: f32, key: DropoutKey, stream: Stream) {
    fill_mask(mask, rate, key, stream, stream_blocks)
}

/// Each element's scale from its word of the stream; `blocks` draws 64 words at a time
/// ([`stream_blocks`]' contract).
#[inline(always)]
fn fill_mask<T: Real>(
    mask: &mut [T],
    rate: f32,
    key: DropoutKey,
    stream: Stream,
    blocks: impl Fn(u64, Stream, u32, u32, u64) -> [u32; 4 * BLOCK_LANES],
) {
    let keep_scale = T::from_f32(1.0 / (1.0 - rate));
    let step_lo = key.step as u32;
    let step_hi_and_layer = ((key.step >> 32) as u32) ^ (key.layer << 24);
    // Element e takes word e of the stream, as element-by-element `stream_word` would
    // (the CUDA kernel's definition).
    for (group, ms) in mask.chunks_mut(4 * BLOCK_LANES).enumerate() {
        let first = (group * BLOCK_LANES) as u64;
        let words = blocks(key.seed, stream, step_lo, step_hi_and_layer, first);
        for (m, &word) in ms.iter_mut().zip(&words) {
            *m = if unit_f32(word) >= rate {
                keep_scale
            } else {
                T::zero()
            };
        }
    }
}

pub fn dropout_backward<T: Real>(mask: &[T], dy: &mut [T]) {
    for (d, &m) in dy.iter_mut().zip(mask) {
        *d *= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream_word;

    /// Every compiled version draws exactly the element-by-element mask (the CUDA
    /// kernel's, which asks `stream_word` per element), for lengths that are and are not
    /// multiples of a block (4) and of a group of blocks (64).
    #[test]
    fn blocked_mask_equals_the_per_element_definition() {
        for n in [1usize, 3, 4, 5, 63, 64, 65, 1023] {
            let key = DropoutKey {
                seed: 0x5eed + n as u64,
                step: (7u64 << 32) + 11,
                layer: 2,
            };
            let mut y = vec![1.0f32; n];
            let mut mask = vec![0.0f32; n];
            dropout_forward(&mut y, &mut mask, 0.3, key);
            let mut versions = vec![("dispatched", mask)];
            let mut portable = vec![0.0f32; n];
            fill_mask(&mut portable, 0.3, key, Stream::Dropout, stream_blocks);
            versions.push(("portable", portable));
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut m = vec![0.0f32; n];
                    // SAFETY: the CPU has AVX2.
                    unsafe { dropout_mask_avx2(&mut m, 0.3, key, Stream::Dropout) };
                    versions.push(("avx2", m));
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    let mut m = vec![0.0f32; n];
                    // SAFETY: the CPU has AVX-512F.
                    unsafe { dropout_mask_avx512(&mut m, 0.3, key, Stream::Dropout) };
                    versions.push(("avx512", m));
                }
            }
            let hi = ((key.step >> 32) as u32) ^ (key.layer << 24);
            for (version, mask) in &versions {
                for (e, m) in mask.iter().enumerate() {
                    let word =
                        stream_word(key.seed, Stream::Dropout, key.step as u32, hi, e as u64);
                    assert_eq!(
                        *m == 0.0,
                        unit_f32(word) < 0.3,
                        "{version} n {n} element {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn dropout_keeps_about_one_minus_rate_and_preserves_mean() {
        let n = 100_000;
        let mut y = vec![1.0f64; n];
        let mut mask = vec![0.0; n];
        let key = DropoutKey {
            seed: 9,
            step: 3,
            layer: 1,
        };
        dropout_forward(&mut y, &mut mask, 0.3, key);
        let kept = mask.iter().filter(|&&m| m > 0.0).count() as f64 / n as f64;
        assert!((kept - 0.7).abs() < 0.01, "kept {kept}");
        let mean = y.iter().sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.02, "mean {mean}");
    }

    #[test]
    fn dropout_mask_is_a_function_of_its_key() {
        let run = |key: DropoutKey| {
            let mut y = vec![1.0f32; 64];
            let mut mask = vec![0.0; 64];
            dropout_forward(&mut y, &mut mask, 0.5, key);
            mask
        };
        let key = DropoutKey {
            seed: 1,
            step: 0,
            layer: 0,
        };
        assert_eq!(run(key), run(key));
        assert_ne!(run(key), run(DropoutKey { step: 1, ..key }));
        assert_ne!(run(key), run(DropoutKey { layer: 1, ..key }));
    }
}
